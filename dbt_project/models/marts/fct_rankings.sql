{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Composite score, ranks, rank change, grade, the Monte Carlo rank band and the
-- bottom-N streak, per department and period.
-- rank_change = previous period's rank - this period's (positive is better), NULL
-- for a department not ranked in the previous period. The previous period is
-- taken as published: from this table for periods before the run's scope.
-- A department that merged or split is ranked under its own id for its valid
-- dates only; its history is never joined to its successor's.
with scored as (
    select * from {{ ref('int_rankings') }} where {{ in_period_scope('period', 'period_type') }}
),

versions as (
    select * from {{ ref('stg_reference__catalogue_versions') }}
),

history as (
    select period, period_type, department_id, overall_rank, n_ranked, cast(null as integer) as bottom_streak
    from scored
    {% if is_incremental() %}
    union all
    select period, period_type, department_id, rank, n_ranked, bottom_streak
    from {{ this }}
    where not {{ in_period_scope('period', 'period_type') }}
    {% endif %}
),

with_bottom as (
    select
        scored.*,
        versions.bottom_n,
        versions.bottom_periods,
        versions.stored_decimals,
        versions.round_mode as stored_round_mode,
        scored.overall_rank > scored.n_ranked - versions.bottom_n as in_bottom
    from scored
    inner join versions on versions.catalogue_version = scored.catalogue_version
),

first_periods as (
    select period_type, min(period) as period from with_bottom group by 1
),

-- Each department's last period out of the bottom N, up to each period.
breaks as (
    select a.period, a.period_type, a.department_id, max(b.period) as last_break
    from with_bottom as a
    inner join with_bottom as b
        on b.department_id = a.department_id and b.period_type = a.period_type
       and b.period <= a.period and not b.in_bottom
    group by 1, 2, 3
),

-- Streak of periods running in the bottom N: the in-scope periods since the last
-- one out of it, plus the streak published for the period before the scope when
-- every in-scope period so far was in the bottom.
streaks as (
    select
        cur.period,
        cur.period_type,
        cur.department_id,
        case when not cur.in_bottom then 0
             else sum(case when earlier.period > coalesce(breaks.last_break, cast('1900-01-01' as date))
                           then 1 else 0 end)
                  + case when breaks.last_break is null then coalesce(max(carried.bottom_streak), 0) else 0 end
        end as bottom_streak
    from with_bottom as cur
    inner join with_bottom as earlier
        on earlier.department_id = cur.department_id and earlier.period_type = cur.period_type
       and earlier.period <= cur.period
    left join breaks
        on breaks.period = cur.period and breaks.period_type = cur.period_type
       and breaks.department_id = cur.department_id
    inner join first_periods on first_periods.period_type = cur.period_type
    left join history as carried
        on carried.department_id = cur.department_id and carried.period_type = cur.period_type
       and carried.period
           = {{ period_before('first_periods.period', 'cur.period_type') }}
    group by cur.period, cur.period_type, cur.department_id, cur.in_bottom, breaks.last_break
),

robustness as (
    select * from {{ ref('int_rank_robustness') }}
),

banded as (
    select
        cur.*,
        robustness.rank_median,
        robustness.rank_p05,
        robustness.rank_p95
    from with_bottom as cur
    left join robustness
        on robustness.period = cur.period and robustness.period_type = cur.period_type
       and robustness.department_id = cur.department_id
),

clear_leads as (
    select a.period, a.period_type, a.department_id, count(b.department_id) as clearly_ahead_of
    from banded as a
    left join banded as b
        on b.period = a.period and b.period_type = a.period_type and b.rank_p05 > a.rank_p95
    group by 1, 2, 3
)

select
    cast(cur.period as date) as period,
    cast(cur.period_type as string) as period_type,
    cast(cur.department_id as string) as department_id,
    {{ stored_score('cur.composite_score', 'cur.stored_decimals', 'cur.stored_round_mode') }} as composite_score,
    cast(cur.overall_rank as integer) as rank,
    cast(cur.group_rank as integer) as peer_group_rank,
    cast(prev.overall_rank - cur.overall_rank as integer) as rank_change,
    cast(cur.rank_p05 as double) as rank_p05,
    cast(cur.rank_p95 as double) as rank_p95,
    cast(cur.grade as string) as grade,
    cast(cur.peer_group as string) as peer_group,
    {{ stored_score('cur.base_score', 'cur.stored_decimals') }} as base_score,
    cast(cur.bonus_points as double) as bonus_points,
    cast(cur.veto_reason as string) as veto_reason,
    cast(cur.catalogue_version as string) as catalogue_version,
    cast(cur.rank_median as double) as rank_median,
    cast(case when cur.rank_p95 is not null then clear_leads.clearly_ahead_of end as integer) as clearly_ahead_of,
    cast(streaks.bottom_streak as integer) as bottom_streak,
    cast(streaks.bottom_streak >= cur.bottom_periods as boolean) as bottom_flag,
    cast(cur.n_ranked as integer) as n_ranked,
    -- how base_score was made: the catalogue tree over the period's scores, or a year
    -- built up from its quarters or months (methodology §9b) out of these parts
    cast(cur.base_method as string) as base_method,
    {{ stored_score('cur.built_from', 'cur.stored_decimals') }} as built_from,
    {{ stored_score('cur.annual_part', 'cur.stored_decimals') }} as annual_part,
    cast({{ engine_round('cur.annual_share', 10) }} as double) as annual_share,
    cast(cur.overall_rank_exact as double) as rank_exact
from banded as cur
inner join streaks
    on streaks.period = cur.period and streaks.period_type = cur.period_type
   and streaks.department_id = cur.department_id
inner join clear_leads
    on clear_leads.period = cur.period and clear_leads.period_type = cur.period_type
   and clear_leads.department_id = cur.department_id
left join history as prev
    on prev.department_id = cur.department_id and prev.period_type = cur.period_type
   and prev.period = {{ period_before('cur.period', 'cur.period_type') }}
