{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Complaint themes (诉求主题) for the bulletin's "citizen voice": per period, how
-- many complaint texts mention each keyword, per department and city-wide
-- (scope 'city', department_id NULL). A quarter pools its months.
--
-- A complaint text is
-- * the comment of a bad review (差评: rating 1-2, counted as rated, i.e. not
--   overturned on appeal), in the month the case was completed, as the good-review
--   rate counts it; and
-- * the comment of a survey response (万人评机关) whose mean score over its
--   questions (the survey_satisfaction indicator's per-response score) is below
--   var complaint_survey_score_below (60, 不及格), in the month it was given.
-- A comment is one text however many question rows the survey has. Keywords are
-- taken at ingest from the masked comment (comment_keywords; docs/methodology.md).
with bad_reviews as (
    select
        'service_transactions' as source,
        department_id,
        completed_month as month,
        case_id as text_id,
        comment_keywords
    from {{ ref('int_transactions__timed') }}
    where completed_at is not null and counts_as_bad_review and has_comment
),

survey_responses as (
    select
        department_id,
        response_month as month,
        response_id,
        avg(score) as response_score,
        max(comment_keywords) as comment_keywords,
        max(case when has_comment then 1 else 0 end) as has_comment
    from {{ ref('stg_lake__survey_responses') }}
    where score is not null and {{ in_lookback_scope('response_month') }}
    group by 1, 2, 3
),

low_surveys as (
    select 'survey_responses' as source, department_id, month, response_id as text_id, comment_keywords
    from survey_responses
    where has_comment = 1 and response_score < {{ var('complaint_survey_score_below', 60) }}
),

complaint_texts as (
    select source || '|' || department_id || '|' || text_id as text_key, department_id, month, comment_keywords
    from (select * from bad_reviews union all select * from low_surveys) as texts
),

grains as {{ period_grains() }},

texts_by_period as (
    select
        {{ grain_period('complaint_texts.month', 'grains.period_type') }} as period,
        grains.period_type,
        {{ scored_department('complaint_texts.department_id') }} as department_id,
        complaint_texts.text_key,
        complaint_texts.comment_keywords
    from complaint_texts
    cross join grains
    {{ join_year_successor('complaint_texts.department_id', 'complaint_texts.month') }}
    where {{ in_grain_scope('complaint_texts.month', 'grains.period_type') }}
),

mentions as (
    select period, period_type, department_id, text_key, {{ split_keywords('comment_keywords') }} as keyword
    from texts_by_period
    where comment_keywords is not null
),

by_department as (
    select m.period, m.period_type, 'department' as scope, m.department_id, m.keyword,
           count(distinct m.text_key) as mentions
    from mentions as m
    group by 1, 2, 3, 4, 5
),

city_wide as (
    select m.period, m.period_type, 'city' as scope, cast(null as string) as department_id, m.keyword,
           count(distinct m.text_key) as mentions
    from mentions as m
    group by 1, 2, 3, 4, 5
),

complaints_by_department as (
    select period, period_type, department_id, count(distinct text_key) as complaints
    from texts_by_period
    group by 1, 2, 3
),

complaints_city_wide as (
    select period, period_type, count(distinct text_key) as complaints
    from texts_by_period
    group by 1, 2
),

themes as (
    select d.*, c.complaints
    from by_department as d
    inner join complaints_by_department as c
        on c.period = d.period and c.period_type = d.period_type and c.department_id = d.department_id
    union all
    select w.*, c.complaints
    from city_wide as w
    inner join complaints_city_wide as c on c.period = w.period and c.period_type = w.period_type
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(scope as string) as scope,
    cast(department_id as string) as department_id,
    cast(keyword as string) as keyword,
    cast(mentions as bigint) as mentions,
    cast(complaints as bigint) as complaints,
    {{ stored_score('100e0 * mentions / complaints') }} as mention_share,
    cast(row_number() over (
        partition by period, period_type, scope, department_id
        order by mentions desc, keyword asc
    ) as integer) as keyword_rank
from themes
where {{ in_period_scope('period', 'period_type') }}
