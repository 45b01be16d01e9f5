select calendar_date, is_working_day from {{ source('reference', 'calendar_exceptions') }}
