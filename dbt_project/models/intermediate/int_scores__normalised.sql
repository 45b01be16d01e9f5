{{ config(materialized='table') }}
-- Each indicator value on a 0-100 scale, higher is better, by the method the
-- catalogue names. The reference set is every department with a scorable value
-- for the same indicator and month. Formulas: PRODUCT.md, "Normalisation".
with values_in_scope as (
    select * from {{ ref('int_indicator_values') }} where meets_min_obs
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

with_reference_set as (
    select
        v.period,
        v.department_id,
        v.indicator_id,
        v.raw_value,
        i.catalogue_version,
        i.direction,
        i.normalisation,
        i.target,
        i.goalpost_lo,
        i.goalpost_hi,
        min(v.raw_value) over reference_set as set_min,
        max(v.raw_value) over reference_set as set_max,
        round(avg(v.raw_value) over reference_set, 10) as set_mean,
        round(stddev_pop(v.raw_value) over reference_set, 10) as set_sd,
        count(*) over reference_set as set_n,
        -- average rank for ties, counted from worst to best
        rank() over (
            partition by v.period, v.indicator_id
            order by case when i.direction = 'lower' then -v.raw_value else v.raw_value end
        ) + (count(*) over (partition by v.period, v.indicator_id, v.raw_value) - 1) / 2.0 as avg_rank
    from values_in_scope as v
    inner join indicators as i
        on i.node_id = v.indicator_id and i.catalogue_version = v.catalogue_version
    window reference_set as (partition by v.period, v.indicator_id)
),

scored as (
    select
        *,
        case normalisation
            when 'min_max' then
                case when set_max = set_min then 100.0
                     when direction = 'higher' then 100.0 * (raw_value - set_min) / (set_max - set_min)
                     else 100.0 * (set_max - raw_value) / (set_max - set_min) end
            when 'z_score' then
                least(greatest(50.0 + 10.0 * (case when set_sd = 0 then 0.0
                     else (case when direction = 'higher' then 1 else -1 end) * (raw_value - set_mean) / set_sd end),
                     0.0), 100.0)
            when 'distance_to_target' then
                case when direction = 'higher' then 100.0 * least(raw_value / target, 1.0)
                     when raw_value <= 0 then 100.0
                     else 100.0 * least(target / raw_value, 1.0) end
            when 'goalposts' then
                100.0 * least(greatest(
                    case when direction = 'higher' then (raw_value - goalpost_lo) / (goalpost_hi - goalpost_lo)
                         else (goalpost_hi - raw_value) / (goalpost_hi - goalpost_lo) end, 0.0), 1.0)
            when 'percentile_rank' then
                case when set_n = 1 then 100.0 else 100.0 * (avg_rank - 1) / (set_n - 1) end
        end as normalised_score
    from with_reference_set
)

select
    period,
    department_id,
    indicator_id,
    catalogue_version,
    raw_value,
    cast(round(normalised_score, 10) as double) as score
from scored
