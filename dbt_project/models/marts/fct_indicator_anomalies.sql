{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Anomalies in indicator series (指标异常, docs/methodology.md §13f): points to look
-- into, never verdicts. One row per reported value of the period and reference tested
-- (own_history or seasonal: the department's own recent values; peer: its peer group,
-- or the city, in the period), flagged or not: the change warning (fct_warnings) reads
-- the own rows whatever their flag, and a reader sees what was tested. flagged: the
-- indicator's anomalies are enabled and |z| >= sensitivity. direction: better or
-- worse, by the indicator's direction. expected range: centre -/+ sensitivity x scale,
-- kept within the catalogue's bounds (else 0-100 for a share of cases, at least 0 for an indicator never negative).
with judged as (
    select * from {{ ref('int_indicator_anomalies') }}
),

rounded as (
    select
        *,
        {{ stored_value('z') }} as stored_z
    from judged
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(indicator_id as string) as indicator_id,
    {{ stored_value('raw_value') }} as raw_value,
    cast(kind as string) as kind,
    cast(reference as string) as reference,
    cast(case when (indicator_direction = 'higher' and z < 0) or (indicator_direction = 'lower' and z > 0)
              then 'worse' else 'better' end as string) as direction,
    {% set low, high = 'centre - sensitivity * scale', 'centre + sensitivity * scale' %}
    {{ stored_value('greatest(' ~ low ~ ', coalesce(lowest_possible, ' ~ low ~ '))') }} as expected_low,
    {{ stored_value('least(' ~ high ~ ', coalesce(highest_possible, ' ~ high ~ '))') }} as expected_high,
    {{ stored_value('centre') }} as centre,
    {{ stored_value('scale') }} as scale,
    stored_z as z,
    cast(n_reference as bigint) as n_reference,
    cast(sensitivity as double) as sensitivity,
    coalesce(anomaly_enabled and beyond, false) as flagged
from rounded
