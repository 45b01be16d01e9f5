{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Composite score, ranks, rank change and grade per department and month.
-- rank_change = previous month's rank - this month's (positive is better), NULL
-- for a department not ranked the month before. rank_p05/rank_p95 (the rank
-- robustness band) are filled by the Monte Carlo of the scoring issue; NULL here.
with ranked as (
    select * from {{ ref('int_rankings') }}
)

select
    cast(cur.period as date) as period,
    cast('month' as varchar) as period_type,
    cast(cur.department_id as varchar) as department_id,
    cast(cur.composite_score as double) as composite_score,
    cast(cur.overall_rank as integer) as rank,
    cast(cur.group_rank as integer) as peer_group_rank,
    cast(prev.overall_rank - cur.overall_rank as integer) as rank_change,
    cast(null as double) as rank_p05,
    cast(null as double) as rank_p95,
    cast(cur.grade as varchar) as grade,
    cast(cur.peer_group as varchar) as peer_group,
    {{ stored_score('cur.base_score') }} as base_score,
    cast(cur.bonus_points as double) as bonus_points,
    cast(cur.veto_reason as varchar) as veto_reason,
    cast(cur.catalogue_version as varchar) as catalogue_version
from ranked as cur
left join ranked as prev
    on prev.department_id = cur.department_id
   and prev.period = {{ add_months('cur.period', -1) }}
where {{ in_period_scope('cur.period') }}
