{{ config(materialized='table') }}
-- Every (department, indicator) cell of each period scored: the value, or why it
-- is missing, and what stands in for it by the indicator's missing-data method.
-- The units of a period are the departments in office with any value in it.
-- A value below the indicator's minimum sample counts as missing (and a survey
-- figure from too few respondents is suppressed, not shown).
with indicator_values as (
    select * from {{ ref('int_indicator_values') }}
),

departments as (
    select * from {{ ref('stg_reference__departments') }}
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

units as (
    select distinct v.period, v.period_type, v.department_id, v.catalogue_version, d.peer_group
    from indicator_values as v
    inner join departments as d on d.department_id = v.department_id
    where {{ in_period_scope('v.period', 'v.period_type') }}
),

cells as (
    select
        units.*,
        indicators.node_id as indicator_id,
        indicators.missing_method,
        indicators.max_lookback
    from units
    inner join indicators on indicators.catalogue_version = units.catalogue_version
),

observed as (
    select
        cells.*,
        v.raw_value,
        v.n_obs,
        v.n_unknown,
        case
            when v.department_id is null then '无数据'
            when v.raw_value is null then '未报数值'
            when not v.meets_min_obs then
                {{ dbt.concat(["'样本量不足（样本量 '", "cast(v.n_obs as string)", "'，低于最低样本量 '",
                               "cast(v.min_obs as string)", "'）'"]) }}
        end as missing_reason
    from cells
    left join indicator_values as v
        on v.period = cells.period
       and v.period_type = cells.period_type
       and v.department_id = cells.department_id
       and v.indicator_id = cells.indicator_id
),

usable as (
    select *, case when missing_reason is null then raw_value end as usable_value from observed
),

group_means as (
    select period, period_type, indicator_id, peer_group, {{ stored_value('avg(usable_value)') }} as group_mean
    from usable
    group by 1, 2, 3, 4
),

-- The department's latest usable value within the look-back, for last_observed.
history as (
    select
        usable.period,
        usable.period_type,
        usable.department_id,
        usable.indicator_id,
        past.raw_value as last_value,
        past.period as last_period,
        row_number() over (
            partition by usable.period, usable.period_type, usable.department_id, usable.indicator_id
            order by past.period desc
        ) as recency
    from usable
    inner join indicator_values as past
        on past.department_id = usable.department_id
       and past.indicator_id = usable.indicator_id
       and past.period_type = usable.period_type
       and past.period < usable.period
       and past.period >= {{ add_months('usable.period', '-usable.max_lookback') }}
       and past.meets_min_obs
       and past.raw_value is not null
    where usable.usable_value is null and usable.missing_method = 'last_observed'
),

final as (
    select
        usable.period,
        usable.period_type,
        usable.department_id,
        usable.indicator_id,
        usable.catalogue_version,
        usable.peer_group,
        -- a value below the minimum sample is not shown
        case when usable.missing_reason is null or usable.raw_value is null then usable.raw_value end as raw_value,
        coalesce(usable.n_obs, 0) as n_obs,
        coalesce(usable.n_unknown, 0) as n_unknown,
        usable.missing_reason,
        case
            when usable.usable_value is not null then usable.usable_value
            when usable.missing_method = 'group_mean' then group_means.group_mean
            when usable.missing_method = 'last_observed' then history.last_value
        end as value,
        case
            when usable.usable_value is not null then null
            when usable.missing_method = 'group_mean' and group_means.group_mean is not null
                then '同组均值'
            when usable.missing_method = 'last_observed' and history.last_value is not null
                then {{ dbt.concat(["'沿用最近值（'", "cast(history.last_period as string)", "'）'"]) }}
        end as imputation
    from usable
    left join group_means
        on group_means.period = usable.period
       and group_means.period_type = usable.period_type
       and group_means.indicator_id = usable.indicator_id
       and group_means.peer_group = usable.peer_group
    left join history
        on history.period = usable.period
       and history.period_type = usable.period_type
       and history.department_id = usable.department_id
       and history.indicator_id = usable.indicator_id
       and history.recency = 1
)

select *, imputation is not null as is_imputed from final
