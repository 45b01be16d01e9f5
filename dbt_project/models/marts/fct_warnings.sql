{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Red and amber warnings: an indicator beyond its catalogue threshold; an
-- indicator that moved abnormally against the department's own history (the robust
-- own-history z of fct_indicator_anomalies, in the worse direction only, at the
-- catalogue's change_warning amber/red); a fail grade or veto;
-- and a composite score that fell sharply against the period before.
with nodes as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

values_in_scope as (
    select v.*, i.node_name, i.unit, i.direction, i.warn_amber, i.warn_red
    from {{ ref('fct_indicator_values') }} as v
    inner join nodes as i on i.node_id = v.indicator_id and i.catalogue_version = v.catalogue_version
    where {{ in_period_scope('v.period', 'v.period_type') }} and v.raw_value is not null
),

threshold_warnings as (
    select
        period,
        period_type,
        department_id,
        indicator_id,
        case
            when (direction = 'higher' and raw_value < warn_red) or (direction = 'lower' and raw_value > warn_red)
                then 'red'
            else 'amber'
        end as level,
        node_name || ' ' || cast({{ engine_round('raw_value', 2) }} as string) || unit
            || case when direction = 'higher' then ' 低于' else ' 高于' end
            || case when (direction = 'higher' and raw_value < warn_red)
                      or (direction = 'lower' and raw_value > warn_red)
                    then '红色预警线 ' || cast(warn_red as string) else '黄色预警线 ' || cast(warn_amber as string) end
            || unit as message
    from values_in_scope
    where (direction = 'higher' and raw_value < coalesce(warn_amber, warn_red))
       or (direction = 'lower' and raw_value > coalesce(warn_amber, warn_red))
),

change_scored as (
    -- the own-reference robust z of the anomalies (fct_indicator_anomalies, kind
    -- own_history or seasonal), signed so that worse is positive: one statistic serves
    -- the change warning and the anomaly flag (docs/methodology.md §11, §13f)
    select
        v.*,
        (case when v.direction = 'higher' then -1 else 1 end) * a.z as worsening_z,
        a.kind,
        a.centre,
        versions.change_amber,
        versions.change_red
    from values_in_scope as v
    inner join {{ ref('fct_indicator_anomalies') }} as a
        on a.period = v.period and a.period_type = v.period_type
       and a.department_id = v.department_id and a.indicator_id = v.indicator_id
       and a.kind in ('own_history', 'seasonal')
    inner join {{ ref('stg_reference__catalogue_versions') }} as versions
        on versions.catalogue_version = v.catalogue_version
),

change_warnings as (
    select
        period,
        period_type,
        department_id,
        indicator_id,
        case when worsening_z >= change_red then 'red' else 'amber' end as level,
        node_name || ' ' || cast({{ engine_round('raw_value', 2) }} as string) || unit
            || case when kind = 'seasonal' then '，较本部门同月季节性预期 ' else '，较本部门近期中位数 ' end
            || cast({{ engine_round('centre', 2) }} as string) || unit || ' 异常变差（偏离 '
            || cast({{ engine_round('worsening_z', 1) }} as string) || ' 个稳健标准差）' as message
    from change_scored
    where worsening_z >= change_amber
),

rankings as (
    select * from {{ ref('fct_rankings') }}
),

composite_warnings as (
    select
        cur.period,
        cur.period_type,
        cur.department_id,
        'composite' as indicator_id,
        case when lowest.is_lowest_grade then 'red' else 'amber' end as level,
        case when cur.veto_reason is not null then '一票否决：' || cur.veto_reason
             when lowest.is_lowest_grade
                 then '综合得分 ' || cast({{ engine_round('cur.composite_score', 2) }} as string) || ' 等次为' || cur.grade
             else '综合得分较上期下降 '
                 || cast({{ engine_round('prev.composite_score - cur.composite_score', 2) }} as string) || ' 分'
        end as message
    from rankings as cur
    inner join {{ ref('int_rankings') }} as lowest
        on lowest.period = cur.period and lowest.period_type = cur.period_type
       and lowest.department_id = cur.department_id
    left join rankings as prev
        on prev.department_id = cur.department_id and prev.period_type = cur.period_type
       and prev.period = {{ period_before('cur.period', 'cur.period_type') }}
    left join {{ ref('stg_reference__catalogue_versions') }} as versions
        on versions.catalogue_version = cur.catalogue_version
    where {{ in_period_scope('cur.period', 'cur.period_type') }}
      -- a drop of 10 points on the 0-100 scale: a tenth of the version's scale (§8a)
      and (lowest.is_lowest_grade or prev.composite_score - cur.composite_score
           >= 10 * (coalesce(versions.scale_hi, 100) - coalesce(versions.scale_lo, 0)) / 100)
),

unioned as (
    select * from threshold_warnings
    union all
    select * from change_warnings
    union all
    select * from composite_warnings
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(indicator_id as string) as indicator_id,
    cast(level as string) as level,
    cast(message as string) as message
from unioned
