{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Every source row behind each indicator value computed from rows: whether it
-- counts (in the denominator, n_obs; in the numerator) and the rule step that
-- decided. Generated from var('evidence_rules') by macro indicator_evidence.
with evidence as (
    {{ indicator_evidence() }}
)

select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(indicator_id as string) as indicator_id,
    cast(source as string) as source,
    cast(file_hash as string) as file_hash,
    cast(source_line as bigint) as source_line,
    cast(unit_key as string) as unit_key,
    cast(n_obs_weight as bigint) as n_obs_weight,
    cast(steps_passed as integer) as steps_passed,
    cast(in_denominator or in_numerator as boolean) as included,
    cast(in_denominator as boolean) as in_denominator,
    cast(in_numerator as boolean) as in_numerator,
    cast(rule_step as integer) as rule_step,
    cast(rule_label as string) as rule_label
from evidence
where {{ in_period_scope('period', 'period_type') }}
