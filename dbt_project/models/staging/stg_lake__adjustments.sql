-- 加减分 and 一票否决 items; the month is the period of the file that carried them.
with source as (
    {{ current_submission_rows('adjustments') }}
)

select
    department_id,
    kind,
    coalesce(points, 0) as points,
    reason,
    evidence_ref,
    _period as adjustment_month,
    _file_hash as file_hash,
    _line as source_line
from source
