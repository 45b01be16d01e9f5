-- Survey satisfaction: each response's mean over its questions, then the mean
-- over responses (pooled over the quarter for the quarter). n_obs counts
-- respondents, for the minimum-sample rule.
with per_response as (
    select department_id, response_month, response_id, avg(score) as response_score
    from {{ ref('stg_lake__survey_responses') }}
    where score is not null and {{ in_lookback_scope('response_month') }}
    group by 1, 2, 3
)

select
    {{ grain_period('per_response.response_month', 'grains.period_type') }} as period,
    grains.period_type,
    {{ scored_department('per_response.department_id') }} as department_id,
    'survey_satisfaction' as indicator_id,
    avg(per_response.response_score) as raw_value,
    count(*) as n_obs
from per_response
cross join {{ period_grains() }} as grains
{{ join_year_successor('per_response.department_id', 'per_response.response_month') }}
where {{ in_grain_scope('per_response.response_month', 'grains.period_type') }}
group by 1, 2, 3
