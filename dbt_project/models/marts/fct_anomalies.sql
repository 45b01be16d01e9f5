{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Points to look into (疑点), never verdicts: one row per screen, period and
-- department tested, with the statistic, what was expected, the p-value, the
-- Benjamini-Hochberg q-value across the departments tested by that screen in that
-- period, and whether it is flagged (q <= fdr). Screens (docs/methodology.md):
--   rating_mismatch, rating_uniformity, rating_fast  int_rating_screens__shares
--   rating_burst                                     int_rating_screens__bursts
--   copied_comment                                   int_rating_screens__copied
with tests as (
    select * from {{ ref('int_rating_screens__shares') }}
    union all
    select * from {{ ref('int_rating_screens__bursts') }}
    union all
    select * from {{ ref('int_rating_screens__copied') }}
),

ordered as (
    -- BH: the i-th smallest of m p-values becomes p * m / i; q is the smallest of
    -- those at or above it, so q keeps the order of p
    select
        *,
        p_value * count(*) over (partition by screen, period, period_type)
        / row_number() over (partition by screen, period, period_type order by p_value, department_id) as bh_step
    from tests
    where {{ in_period_scope('period', 'period_type') }}
),

adjusted as (
    select
        *,
        least(1.0, min(bh_step) over (
            partition by screen, period, period_type
            order by p_value desc, department_id desc
            rows between unbounded preceding and current row
        )) as q_value
    from ordered
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(screen as string) as screen,
    cast(subject as string) as subject,
    cast(n as bigint) as n,
    cast(tried as bigint) as tried,
    cast(observed as bigint) as observed,
    {{ stored_value('statistic') }} as statistic,
    {{ stored_value('expected') }} as expected,
    {{ stored_value('rho') }} as rho,
    {{ stored_value('p_value') }} as p_value,
    {{ stored_value('q_value') }} as q_value,
    cast({{ screen_setting('fdr') }} as double) as fdr,
    q_value <= {{ screen_setting('fdr') }} as flagged
from adjusted
