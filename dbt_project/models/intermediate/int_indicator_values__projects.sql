-- Milestones planned for the month that were completed by their planned date.
-- A milestone not completed counts as late.
select
    planned_month as period,
    department_id,
    'project_on_time_rate' as indicator_id,
    100.0 * sum(case when completed_on <= planned_on then 1 else 0 end) / count(*) as raw_value,
    count(*) as n_obs
from {{ ref('stg_lake__key_projects') }}
where {{ in_lookback_scope('planned_month') }}
group by 1, 2
