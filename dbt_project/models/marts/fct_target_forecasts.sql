{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Forecasts of target attainment (趋势预测), points to look into, never verdicts:
-- per month the forecast was made in, department and indicator with a target, the
-- forecast of the year-end month (December; in a December, the March after) from
-- the reported monthly values through that month, its 80% interval and the
-- probability of meeting the target (docs/methodology.md §13g). A quarter's
-- edition reads the forecasts of its last month. The latest value is joined from
-- fct_indicator_values so that a reader sees where the series stands.
with forecasts as (
    select * from {{ ref('stg_lake__target_forecasts') }}
    where {{ in_period_scope('period') }}
),

latest as (
    select department_id, indicator_id, period, raw_value
    from {{ ref('fct_indicator_values') }}
    where period_type = 'month'
)

select
    cast(f.period as date) as period,
    cast('month' as string) as period_type,
    cast(f.department_id as string) as department_id,
    cast(f.indicator_id as string) as indicator_id,
    cast(f.catalogue_version as string) as catalogue_version,
    cast(f.last_period as date) as last_period,
    {{ stored_value('latest.raw_value') }} as last_value,
    cast(f.forecast_period as date) as forecast_period,
    cast(f.horizon_months as integer) as horizon_months,
    cast(f.n_months as integer) as n_months,
    cast(f.forecast_model as string) as forecast_model,
    {{ stored_value('f.forecast') }} as forecast,
    {{ stored_value('f.lo80') }} as lo80,
    {{ stored_value('f.hi80') }} as hi80,
    cast(f.target as double) as target,
    cast(f.direction as string) as direction,
    {{ stored_value('f.p_meet') }} as p_meet,
    cast(f.status as string) as status,
    cast(f.reason as string) as reason
from forecasts as f
left join latest
    on latest.department_id = f.department_id
    and latest.indicator_id = f.indicator_id
    and latest.period = f.last_period
