{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- The reference values each indicator's normalisation used in each period: the
-- reference set (every department with a treated value) and its minimum, maximum,
-- mean and standard deviation, as macro normalised_scores computes them, with the
-- catalogue's target and goalposts.
with treated as (
    select * from {{ ref('int_indicator_treated') }}
    where treated_value is not null and {{ in_period_scope('period', 'period_type') }}
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
)

select
    cast(t.period as date) as period,
    cast(t.period_type as string) as period_type,
    cast(t.indicator_id as string) as indicator_id,
    cast(t.catalogue_version as string) as catalogue_version,
    cast(i.normalisation as string) as normalisation,
    cast(i.direction as string) as direction,
    cast(count(*) as bigint) as set_n,
    cast(min(t.treated_value) as double) as set_min,
    cast(max(t.treated_value) as double) as set_max,
    cast({{ engine_round('avg(t.treated_value)', 10) }} as double) as set_mean,
    cast({{ engine_round('stddev_samp(t.treated_value)', 10) }} as double) as set_sd,
    cast(i.target as double) as target,
    cast(i.goalpost_lo as double) as goalpost_lo,
    cast(i.goalpost_hi as double) as goalpost_hi
from treated as t
inner join indicators as i on i.node_id = t.indicator_id and i.catalogue_version = t.catalogue_version
group by t.period, t.period_type, t.indicator_id, t.catalogue_version, i.normalisation, i.direction,
         i.target, i.goalpost_lo, i.goalpost_hi
