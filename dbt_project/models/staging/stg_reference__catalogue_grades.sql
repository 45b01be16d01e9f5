select * from {{ source('reference', 'catalogue_grades') }}
