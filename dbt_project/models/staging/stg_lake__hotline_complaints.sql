with source as (
    {{ current_submission_rows('hotline_complaints', case_key='ticket_id') }}
)

select
    ticket_id,
    department_id,
    received_at,
    closed_at,
    category,
    substantiated,
    {{ month_of('received_at') }} as received_month,
    _file_hash as file_hash,
    _line as source_line
from source
