-- Survey satisfaction: each response's mean over its questions, then the mean
-- over responses. n_obs counts respondents, for the minimum-sample rule.
with per_response as (
    select department_id, response_month as period, response_id, avg(score) as response_score
    from {{ ref('stg_lake__survey_responses') }}
    where score is not null and {{ in_lookback_scope('response_month') }}
    group by 1, 2, 3
)

select
    period,
    department_id,
    'survey_satisfaction' as indicator_id,
    avg(response_score) as raw_value,
    count(*) as n_obs
from per_response
group by 1, 2
