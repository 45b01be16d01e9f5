{{ config(materialized='table') }}
-- The batches int_rank_robustness summarises the Monte Carlo's draws in: whole
-- periods (a band needs all of a department's draws in its period), about
-- monte_carlo_batch_rows draw ranks each (reference/warehouse.yaml). Percentiles
-- hold every value they summarise and cannot spill: a province's year (16 periods x
-- 5,000 units x 1,000 draws) at once outgrew a 1GB limit, one period does not.
with periods as (
    select period, period_type, count(*) as draw_ranks
    from {{ ref('int_rank_robustness__draws') }}
    group by 1, 2
),

numbered as (
    select
        period,
        period_type,
        draw_ranks,
        floor(
            (sum(draw_ranks) over (order by period, period_type) - draw_ranks)
            / {{ build_setting('monte_carlo_batch_rows', 2000000) }}
        ) as batch_start
    from periods
)

select
    period,
    period_type,
    draw_ranks,
    cast(dense_rank() over (order by batch_start) as integer) as batch
from numbered
