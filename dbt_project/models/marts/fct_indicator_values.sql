{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Every (department, indicator) cell of each period scored: the raw value and its
-- observations, the value scored after imputation and outlier treatment, the
-- 0-100 score, and why a value is missing or what stands in for it. n_unknown
-- counts the observations left out of n_obs as unknown (an unknown channel). A value from
-- fewer observations than the indicator's min_obs is not shown (raw_value NULL).
with cells as (
    select * from {{ ref('int_indicator_treated') }} where {{ in_period_scope('period', 'period_type') }}
),

scores as (
    select * from {{ ref('int_scores__normalised') }}
)

select
    cast(c.period as date) as period,
    cast(c.period_type as string) as period_type,
    cast(c.department_id as string) as department_id,
    cast(c.indicator_id as string) as indicator_id,
    cast(c.raw_value as double) as raw_value,
    cast(c.n_obs as bigint) as n_obs,
    {{ stored_score('s.score', 'v.stored_decimals') }} as score,
    cast(c.is_imputed as boolean) as is_imputed,
    cast(c.catalogue_version as string) as catalogue_version,
    cast(c.missing_reason is null as boolean) as meets_min_obs,
    cast(c.treated_value as double) as scored_value,
    cast(c.is_treated as boolean) as is_treated,
    cast(c.imputation as string) as imputation,
    cast(c.missing_reason as string) as missing_reason,
    cast(c.n_unknown as bigint) as n_unknown
from cells as c
left join {{ ref('stg_reference__catalogue_versions') }} as v on v.catalogue_version = c.catalogue_version
left join scores as s
    on s.period = c.period and s.period_type = c.period_type
   and s.department_id = c.department_id and s.indicator_id = c.indicator_id
