{{ config(materialized='table') }}
-- Rank robustness (OECD/JRC handbook, uncertainty analysis): per department and
-- period, the median rank over the seeded Monte Carlo's draws and the 5th-95th
-- percentile band (the draws' ranks are in int_rank_robustness__draws).
select
    period,
    period_type,
    department_id,
    count(*) as draws,
    cast({{ percentile('draw_rank', 0.5) }} as double) as rank_median,
    cast({{ percentile('draw_rank', 0.05) }} as double) as rank_p05,
    cast({{ percentile('draw_rank', 0.95) }} as double) as rank_p95
from {{ ref('int_rank_robustness__draws') }}
group by 1, 2, 3
