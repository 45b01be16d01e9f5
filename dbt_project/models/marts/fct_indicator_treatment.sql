{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- The outlier treatment of each indicator and period: the rule the catalogue
-- names, the caps it set and what it did to the distribution, for auditors.
select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(indicator_id as string) as indicator_id,
    cast(catalogue_version as string) as catalogue_version,
    cast(outlier_method as string) as outlier_method,
    cast(lower_cap as double) as lower_cap,
    cast(upper_cap as double) as upper_cap,
    cast(times_capped_low as integer) as times_capped_low,
    cast(times_capped_high as integer) as times_capped_high,
    {{ stored_score('skewness_before') }} as skewness_before,
    {{ stored_score('kurtosis_before') }} as kurtosis_before,
    {{ stored_score('skewness_after') }} as skewness_after,
    {{ stored_score('kurtosis_after') }} as kurtosis_after,
    cast(still_outside_thresholds as boolean) as still_outside_thresholds,
    cast(case outlier_method
        when 'none' then '不处理'
        when 'winsorise' then '百分位缩尾'
        when 'skew_kurtosis' then
            case when times_capped_low + times_capped_high = 0 then '偏度峰度未超限，未处理'
                 else {{ dbt.concat(["'偏度峰度规则：高端截尾 '", "cast(times_capped_high as string)",
                                     "' 次，低端截尾 '", "cast(times_capped_low as string)", "' 次'"]) }}
            end
    end as string) as rule
from {{ ref('int_indicator_treatment') }}
where {{ in_period_scope('period', 'period_type') }}
