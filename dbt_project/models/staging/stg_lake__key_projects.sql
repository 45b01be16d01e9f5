with source as (
    {{ current_submission_rows('key_projects') }}
)

select
    project_id,
    department_id,
    project_name,
    milestone,
    planned_on,
    completed_on,
    {{ month_of('planned_on') }} as planned_month,
    _file_hash as file_hash,
    _line as source_line
from source
