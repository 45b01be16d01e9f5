{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Comment sentiment (文本情感分析): per period, department and source, how many
-- free-text comments were scored and the share the shipped model finds negative
-- (P(negative) >= var sentiment_negative_from, 0.5). A quarter pools its months.
--
-- A comment counts once, in the month its row counts in:
-- * service_transactions: the comment given with the rating, in the month the case
--   was completed (as the good-review rate counts it; an open case's comment in
--   the month it was received); cases that are not the department's (duplicate,
--   transferred, not_a_case) are left out, as from every indicator;
-- * survey_responses: one comment per response (however many question rows), in
--   the month it was given;
-- * hotline_complaints: the complaint text, in the month it was received.
with sentiment as (
    select * from {{ ref('stg_lake__comment_sentiment') }}
),

transaction_comments as (
    select
        'service_transactions' as source,
        cases.department_id,
        coalesce(cases.completed_month, cases.received_month) as month,
        cases.case_id as text_id,
        sentiment.negative_p
    from {{ ref('int_transactions__timed') }} as cases
    inner join sentiment
        on sentiment.source = 'service_transactions'
        and sentiment.file_hash = cases.file_hash
        and sentiment.source_line = cases.source_line
    where cases.has_comment
),

survey_comments as (
    select
        'survey_responses' as source,
        responses.department_id,
        responses.response_month as month,
        responses.response_id as text_id,
        max(sentiment.negative_p) as negative_p
    from {{ ref('stg_lake__survey_responses') }} as responses
    inner join sentiment
        on sentiment.source = 'survey_responses'
        and sentiment.file_hash = responses.file_hash
        and sentiment.source_line = responses.source_line
    where responses.has_comment and {{ in_lookback_scope('responses.response_month') }}
    group by 1, 2, 3, 4
),

hotline_texts as (
    select
        'hotline_complaints' as source,
        complaints.department_id,
        complaints.received_month as month,
        complaints.ticket_id as text_id,
        sentiment.negative_p
    from {{ ref('stg_lake__hotline_complaints') }} as complaints
    inner join sentiment
        on sentiment.source = 'hotline_complaints'
        and sentiment.file_hash = complaints.file_hash
        and sentiment.source_line = complaints.source_line
    where {{ in_lookback_scope('complaints.received_month') }}
),

scored as (
    select * from transaction_comments
    union all
    select * from survey_comments
    union all
    select * from hotline_texts
),

grains as {{ period_grains() }},

by_period as (
    select
        {{ grain_period('scored.month', 'grains.period_type') }} as period,
        grains.period_type,
        {{ scored_department('scored.department_id') }} as department_id,
        scored.source,
        count(*) as n_scored,
        sum(case when scored.negative_p >= {{ var('sentiment_negative_from', 0.5) }} then 1 else 0 end) as n_negative,
        -- summed as whole ten-thousandths (the scores' stored precision): exact in any
        -- order, so that the mean rounds the same on every run (a float sum would not)
        sum(cast({{ engine_round('scored.negative_p * 10000', 0) }} as bigint)) / (10000e0 * count(*))
            as mean_negative_p
    from scored
    cross join grains
    {{ join_year_successor('scored.department_id', 'scored.month') }}
    where {{ in_grain_scope('scored.month', 'grains.period_type') }} and scored.department_id is not null
    group by 1, 2, 3, 4
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(source as string) as source,
    cast(n_scored as bigint) as n_scored,
    cast(n_negative as bigint) as n_negative,
    {{ stored_score('100e0 * n_negative / n_scored') }} as negative_share,
    {{ stored_score('mean_negative_p') }} as mean_negative_p
from by_period
where {{ in_period_scope('period', 'period_type') }}
