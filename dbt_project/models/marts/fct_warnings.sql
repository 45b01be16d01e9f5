{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Red and amber warnings: an indicator beyond its catalogue threshold, a fail
-- grade, and a composite score that fell sharply against the month before.
with values_in_scope as (
    select v.*, i.node_name, i.unit, i.direction, i.warn_amber, i.warn_red
    from {{ ref('int_indicator_values') }} as v
    inner join {{ ref('stg_reference__catalogue_nodes') }} as i
        on i.node_id = v.indicator_id and i.catalogue_version = v.catalogue_version
    where {{ in_period_scope('v.period') }} and v.meets_min_obs
),

threshold_warnings as (
    select
        period,
        department_id,
        indicator_id,
        case
            when (direction = 'higher' and raw_value < warn_red) or (direction = 'lower' and raw_value > warn_red) then 'red'
            else 'amber'
        end as level,
        node_name || ' ' || cast(round(raw_value, 2) as varchar) || unit
            || case when direction = 'higher' then ' 低于' else ' 高于' end
            || case when (direction = 'higher' and raw_value < warn_red) or (direction = 'lower' and raw_value > warn_red)
                    then '红色预警线 ' || cast(warn_red as varchar) else '黄色预警线 ' || cast(warn_amber as varchar) end
            || unit as message
    from values_in_scope
    where (direction = 'higher' and raw_value < coalesce(warn_amber, warn_red))
       or (direction = 'lower' and raw_value > coalesce(warn_amber, warn_red))
),

rankings as (
    select * from {{ ref('int_rankings') }}
),

composite_warnings as (
    select
        cur.period,
        cur.department_id,
        'composite' as indicator_id,
        case when cur.grade = '不合格' then 'red' else 'amber' end as level,
        case when cur.veto_reason is not null then '一票否决：' || cur.veto_reason
             when cur.grade = '不合格' then '综合得分 ' || cast(round(cur.composite_score, 2) as varchar) || ' 等次为不合格'
             else '综合得分较上月下降 ' || cast(round(prev.composite_score - cur.composite_score, 2) as varchar) || ' 分'
        end as message
    from rankings as cur
    left join rankings as prev
        on prev.department_id = cur.department_id and prev.period = {{ add_months('cur.period', -1) }}
    where {{ in_period_scope('cur.period') }}
      and (cur.grade = '不合格' or prev.composite_score - cur.composite_score >= 10)
),

unioned as (
    select * from threshold_warnings
    union all
    select * from composite_warnings
)

select
    cast(period as date) as period,
    cast('month' as varchar) as period_type,
    cast(department_id as varchar) as department_id,
    cast(indicator_id as varchar) as indicator_id,
    cast(level as varchar) as level,
    cast(message as varchar) as message
from unioned
