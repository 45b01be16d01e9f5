-- One row per response and question (the export is unpivoted at ingest).
with source as (
    {{ current_submission_rows('survey_responses') }}
)

select
    response_id,
    department_id,
    responded_on,
    question,
    score,
    -- keywords of the masked comment, joined by ',' (pipelines/ingest/keywords.py)
    comment_keywords,
    coalesce(length(trim(comment)) > 0, false) as has_comment,
    {{ month_of('responded_on') }} as response_month,
    _file_hash as file_hash,
    _line as source_line
from source
