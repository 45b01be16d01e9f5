-- The inclusion rules of marts.fct_indicator_evidence, one row per step, as
-- var('evidence_rules') states them (indicator_id '*': the row's own indicator).
with rules as (
    {{ evidence_rule_rows() }}
)

select
    cast(indicator_id as string) as indicator_id,
    cast(formula as string) as formula,
    cast(scale as double) as scale,
    cast(formula_label as string) as formula_label,
    cast(rule_order as integer) as rule_order,
    cast(part_order as integer) as part_order,
    cast(source as string) as source,
    cast(relation as string) as relation,
    cast(unit_key as string) as unit_key,
    cast(step as integer) as step_number,
    cast(label as string) as step_label,
    cast(predicate as string) as predicate,
    cast(role as string) as step_role
from rules
