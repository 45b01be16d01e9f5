with source as (
    {{ current_submission_rows('budget_execution') }}
)

select
    department_id,
    {{ month_of('month') }} as budget_month,
    planned_amount,
    actual_amount,
    _file_hash as file_hash,
    _line as source_line
from source
