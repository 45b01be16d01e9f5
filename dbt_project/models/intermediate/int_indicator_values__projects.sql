-- Milestones planned for the period that were completed by their planned date.
-- A milestone not completed counts as late.
select
    {{ grain_period('p.planned_month', 'grains.period_type') }} as period,
    grains.period_type,
    {{ scored_department('p.department_id') }} as department_id,
    'project_on_time_rate' as indicator_id,
    100e0 * sum(case when p.completed_on <= p.planned_on then 1 else 0 end) / count(*) as raw_value,
    count(*) as n_obs
from {{ ref('stg_lake__key_projects') }} as p
cross join {{ period_grains() }} as grains
{{ join_year_successor('p.department_id', 'p.planned_month') }}
where {{ in_grain_scope('p.planned_month', 'grains.period_type') }}
group by 1, 2, 3
