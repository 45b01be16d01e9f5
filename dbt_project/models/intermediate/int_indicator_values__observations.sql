-- Indicator values (and denominator series) supplied as figures. A unit listed
-- without a value keeps its row, with no value, so that imputation sees the gap.
select
    period,
    'month' as period_type,
    department_id,
    indicator_id,
    avg(value) as raw_value,
    coalesce(sum(n_obs), count(value)) as n_obs
from {{ ref('stg_lake__indicator_observations') }}
where {{ in_lookback_scope('period') }}
group by 1, 2, 3, 4
