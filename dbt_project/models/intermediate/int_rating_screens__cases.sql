{{ config(materialized='table') }}
-- The rated cases the rating-gaming screens read: one row per case with a rating,
-- in the month its rating counts in (the completion month, as the good-review rate
-- counts it), with its comment's sentiment score and fingerprint where it has a
-- comment (pipelines/analytics/comments.py) and its rating time where the extract
-- gives one (`rated_at`, optional). Cases that are not the department's (duplicate,
-- transferred, not_a_case) are already left out by int_transactions__timed.
-- A table, built once: the three screen models read it, and the join over every case
-- must not run three times, nor hold memory beside the marts' heaviest builds (the
-- sample's cold build runs within DuckDB's 1 GB).
select
    cases.case_id,
    cases.department_id,
    departments.peer_group,
    cases.completed_month as month,
    cases.service_item,
    cases.channel,
    cases.rating,
    cases.completed_at,
    cases.rated_at,
    sentiment.negative_p,
    sentiment.text_chars,
    sentiment.text_key
from {{ ref('int_transactions__timed') }} as cases
left join {{ ref('stg_reference__departments') }} as departments
    on departments.department_id = cases.department_id
left join {{ ref('stg_lake__comment_sentiment') }} as sentiment
    on sentiment.source = 'service_transactions'
    and sentiment.file_hash = cases.file_hash
    and sentiment.source_line = cases.source_line
    and cases.has_comment
where cases.rating is not null
    and cases.completed_month is not null
    and {{ in_lookback_scope('cases.completed_month') }}
