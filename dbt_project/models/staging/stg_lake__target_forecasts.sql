-- Forecasts of target attainment as the forecast asset wrote them: one row per
-- month made in (period), department and indicator with a target. The schema file
-- (lake/target_forecasts/_schema) has no rows.
select
    cast(period as date) as period,
    cast(catalogue_version as string) as catalogue_version,
    cast(department_id as string) as department_id,
    cast(indicator_id as string) as indicator_id,
    cast(last_period as date) as last_period,
    cast(forecast_period as date) as forecast_period,
    cast(horizon_months as integer) as horizon_months,
    cast(n_months as integer) as n_months,
    cast(forecast_model as string) as forecast_model,
    cast(forecast as double) as forecast,
    cast(lo80 as double) as lo80,
    cast(hi80 as double) as hi80,
    cast(target as double) as target,
    cast(direction as string) as direction,
    cast(p_meet as double) as p_meet,
    cast(status as string) as status,
    cast(reason as string) as reason
from {{ source('lake', 'target_forecasts') }}
