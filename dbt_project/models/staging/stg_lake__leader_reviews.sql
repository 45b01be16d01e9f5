with source as (
    {{ current_submission_rows('leader_reviews') }}
)

select
    department_id,
    year as review_year,
    quarter as review_quarter,
    score,
    remarks,
    cast({{ dbt.concat(["cast(year as string)", "'-'",
                        "lpad(cast(3 * (quarter - 1) + 1 as string), 2, '0')", "'-01'"]) }} as date)
        as quarter_start,
    _file_hash as file_hash,
    _line as source_line
from source
