-- Indicator values (and denominator series) supplied as figures. A unit listed
-- without a value keeps its row, with no value, so that imputation sees the gap.
-- n_obs counts the observations behind the values supplied: a row's n_obs, or 1
-- when it gives none; a row without a value contributes none (the evidence rule
-- in dbt_project.yml counts the same way, and a test holds the two equal).
select
    period,
    'month' as period_type,
    department_id,
    indicator_id,
    avg(value) as raw_value,
    coalesce(sum(case when value is not null then coalesce(n_obs, 1) end), 0) as n_obs
from {{ ref('stg_lake__indicator_observations') }}
where {{ in_lookback_scope('period') }}
group by 1, 2, 3, 4
