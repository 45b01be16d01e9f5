{{ config(materialized=batched_materialization(), batches_from='int_rank_robustness__periods') }}
-- Rank robustness (OECD/JRC handbook, uncertainty analysis): per department and
-- period, the median rank over the seeded Monte Carlo's draws and the 5th-95th
-- percentile band (the draws' ranks are in int_rank_robustness__draws). Built a
-- batch of whole periods at a time (int_rank_robustness__periods).
with periods as (
    select period, period_type from {{ ref('int_rank_robustness__periods') }}
    where batch = coalesce({{ batch_number() }}, batch)
)

select
    draws.period,
    draws.period_type,
    draws.department_id,
    count(*) as draws,
    cast({{ percentile('draws.draw_rank', 0.5) }} as double) as rank_median,
    cast({{ percentile('draws.draw_rank', 0.05) }} as double) as rank_p05,
    cast({{ percentile('draws.draw_rank', 0.95) }} as double) as rank_p95
from {{ ref('int_rank_robustness__draws') }} as draws
inner join periods on periods.period = draws.period and periods.period_type = draws.period_type
group by 1, 2, 3
