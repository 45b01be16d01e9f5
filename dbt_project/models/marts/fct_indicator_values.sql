{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Raw value and 0-100 score of every indicator, per department and month. A value
-- below the indicator's minimum sample keeps its raw value and gets no score.
with values_in_scope as (
    select * from {{ ref('int_indicator_values') }} where {{ in_period_scope('period') }}
),

scores as (
    select * from {{ ref('int_scores__normalised') }}
)

select
    cast(v.period as date) as period,
    cast('month' as varchar) as period_type,
    cast(v.department_id as varchar) as department_id,
    cast(v.indicator_id as varchar) as indicator_id,
    cast(v.raw_value as double) as raw_value,
    cast(v.n_obs as bigint) as n_obs,
    {{ stored_score('s.score') }} as score,
    cast(false as boolean) as is_imputed,
    cast(v.catalogue_version as varchar) as catalogue_version,
    cast(v.meets_min_obs as boolean) as meets_min_obs
from values_in_scope as v
left join scores as s
    on s.period = v.period and s.department_id = v.department_id and s.indicator_id = v.indicator_id
