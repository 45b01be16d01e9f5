{#- Evidence: which source rows each indicator value counts, and the rule that
    decided, built from var('evidence_rules') (dbt_project.yml). One select per
    rule part; the steps of a part are applied in order, and a row's steps_passed
    is how many it passed before the first it failed. The denominator step's rows
    are what n_obs counts; the numerator step's, a ratio's numerator. -#}

{% macro evidence_rules() -%}
    {%- set rules = var('evidence_rules') -%}
    {%- for rule in rules -%}
        {%- for key in ['formula', 'formula_label', 'parts'] -%}
            {%- if key not in rule -%}
                {{ exceptions.raise_compiler_error('evidence_rules: ' ~ (rule.indicator_id or '*') ~ ' has no ' ~ key) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if rule.formula not in ['ratio', 'count', 'value'] -%}
            {{ exceptions.raise_compiler_error('evidence_rules: ' ~ rule.indicator_id ~ ': formula ' ~ rule.formula ~ ' is not ratio, count or value') }}
        {%- endif -%}
        {%- for part in rule.parts -%}
            {%- for step in part.steps -%}
                {%- if step.get('role', 'none') not in ['denominator', 'numerator', 'none'] -%}
                    {{ exceptions.raise_compiler_error('evidence_rules: ' ~ rule.indicator_id ~ ': role ' ~ step.role ~ ' is not denominator, numerator or none') }}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(rules) }}
{%- endmacro %}

{% macro sql_text(value) -%}
    {%- if value is none -%} cast(null as string)
    {%- else -%} '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{#- The 1-based position of the step with `role` in a part, or none. -#}
{% macro evidence_step_of(part, role) -%}
    {%- set found = namespace(step=none) -%}
    {%- for step in part.steps -%}
        {%- if step.get('role') == role and found.step is none -%}{%- set found.step = loop.index -%}{%- endif -%}
    {%- endfor -%}
    {{ return(found.step) }}
{%- endmacro %}

{#- (period, period_type, the row) pairs of a part, by its period mode; `r` is the
    row, `month` the month it counts in. evidence_department is the department whose
    value the row counts in: at a year under annual.merged_departments: successor, a
    merged department's successor (join_year_successor). -#}
{% macro evidence_periods(part) -%}
    {%- set mode = part.get('period_mode', 'grains') -%}
    {%- set column = 'r.' ~ part.get('period_column', 'period') -%}
    {%- if mode == 'grains' -%}
    select r.*, {{ grain_period(column, 'grains.period_type') }} as evidence_period, grains.period_type as evidence_period_type,
        {{ scored_department('r.department_id') }} as evidence_department
    from {{ ref(part.relation) }} as r
    cross join {{ period_grains() }} as grains
    {{ join_year_successor('r.department_id', column) }}
    where {{ in_grain_scope(column, 'grains.period_type') }}
    {%- elif mode == 'month_only' -%}
    select r.*, {{ column }} as evidence_period, 'month' as evidence_period_type, r.department_id as evidence_department
    from {{ ref(part.relation) }} as r
    where {{ in_lookback_scope(column) }}
    {%- elif mode == 'given' -%}
    select r.*, r.period as evidence_period, r.period_type as evidence_period_type,
        {{ scored_department('r.department_id') }} as evidence_department
    from {{ ref(part.relation) }} as r
    {{ join_year_successor('r.department_id', 'r.period', 'r.period_type') }}
    {%- elif mode == 'quarter_to_months' -%}
    {#- a quarter's row counts in the quarter, in each of its months, and in its year -#}
    select r.*,
        (case when spans.period_type = 'year' then {{ month_of(dbt.date_trunc('year', column)) }}
              else {{ add_months(column, 'spans.month_offset') }} end) as evidence_period,
        spans.period_type as evidence_period_type,
        {{ scored_department('r.department_id') }} as evidence_department
    from {{ ref(part.relation) }} as r
    cross join (
        select 0 as month_offset, 'month' as period_type
        union all select 1, 'month' union all select 2, 'month' union all select 0, 'quarter'
        union all select 0, 'year'
    ) as spans
    {{ join_year_successor('r.department_id', column, 'spans.period_type') }}
    {%- elif mode == 'year_to_date' -%}
    {#- a month's row counts in every later month of its year the department
        reported, and in each such quarter's and the year's end (not the year of a
        department that counts with its successor: it has no year value) -#}
    select r.*,
        {{ add_months('ends.end_month', '1 - ' ~ months_in_period('ends.period_type')) }} as evidence_period,
        ends.period_type as evidence_period_type,
        r.department_id as evidence_department
    from {{ ref(part.relation) }} as r
    inner join (
        select distinct reported.department_id, reported.{{ part.period_column }} as end_month, grains.period_type
        from {{ ref(part.relation) }} as reported
        cross join {{ period_grains() }} as grains
        {{ join_year_successor('reported.department_id', 'reported.' ~ part.period_column) }}
        where successor.department_id is null and (grains.period_type = 'month'
           or (grains.period_type = 'quarter' and extract(month from reported.{{ part.period_column }}) in (3, 6, 9, 12))
           or (grains.period_type = 'year' and extract(month from reported.{{ part.period_column }}) = 12))
    ) as ends
        on ends.department_id = r.department_id
       and {{ column }} <= ends.end_month
       and {{ column }} >= {{ month_of(dbt.date_trunc('year', 'ends.end_month')) }}
    {%- else -%}
    {{ exceptions.raise_compiler_error('evidence_rules: period_mode ' ~ mode ~ ' is not grains, month_only, given, quarter_to_months or year_to_date') }}
    {%- endif -%}
{%- endmacro %}

{#- marts.fct_indicator_evidence: one row per indicator value and source row. -#}
{% macro indicator_evidence() -%}
{%- set selects = [] -%}
{%- for rule in evidence_rules() -%}
{%- for part in rule.parts -%}
{%- set n_steps = part.steps | length -%}
{%- set denominator = evidence_step_of(part, 'denominator') -%}
{%- set numerator = evidence_step_of(part, 'numerator') -%}
{%- set indicator = 'r.' ~ part.indicator_column if part.get('indicator_column') else sql_text(rule.indicator_id) -%}
{%- set query -%}
select
    period,
    period_type,
    department_id,
    indicator_id,
    source,
    file_hash,
    source_line,
    unit_key,
    n_obs_weight,
    steps_passed,
    {{ 'steps_passed >= ' ~ denominator if denominator else 'false' }} as in_denominator,
    {{ 'steps_passed >= ' ~ numerator if numerator else 'false' }} as in_numerator,
    {#- the step that decided: the first one failed, else the last one -#}
    least(steps_passed + 1, {{ n_steps }}) as rule_step,
    case least(steps_passed + 1, {{ n_steps }})
        {%- for step in part.steps %}
        when {{ loop.index }} then {{ sql_text(step.label) }}
        {%- endfor %}
    end as rule_label
from (
    select
        r.evidence_period as period,
        r.evidence_period_type as period_type,
        r.evidence_department as department_id,
        {{ indicator }} as indicator_id,
        {{ sql_text(part.source) }} as source,
        r.file_hash,
        r.source_line,
        cast({{ part.get('unit_key', 'null') }} as string) as unit_key,
        cast({{ part.get('weight', '1') }} as bigint) as n_obs_weight,
        case
            {%- for step in part.steps %}
            when not coalesce({{ step.predicate }}, false) then {{ loop.index0 }}
            {%- endfor %}
            else {{ n_steps }}
        end as steps_passed
    from ({{ evidence_periods(part) }}) as r
) as judged
{%- endset -%}
{%- do selects.append(query) -%}
{%- endfor -%}
{%- endfor -%}
{{ selects | join('\nunion all\n') }}
{%- endmacro %}

{#- marts.dim_evidence_rule: the rules themselves, one row per step. -#}
{% macro evidence_rule_rows() -%}
{%- set selects = [] -%}
{%- for rule in evidence_rules() -%}
{%- set rule_index = loop.index -%}
{%- for part in rule.parts -%}
{%- set part_index = loop.index -%}
{%- for step in part.steps -%}
{%- do selects.append(
    'select ' ~ sql_text(rule.indicator_id or '*') ~ ' as indicator_id, '
    ~ sql_text(rule.formula) ~ ' as formula, '
    ~ (rule.scale | default(1)) ~ ' as scale, '
    ~ sql_text(rule.formula_label) ~ ' as formula_label, '
    ~ rule_index ~ ' as rule_order, '
    ~ part_index ~ ' as part_order, '
    ~ sql_text(part.source) ~ ' as source, '
    ~ sql_text(part.relation) ~ ' as relation, '
    ~ sql_text(part.get('unit_key')) ~ ' as unit_key, '
    ~ loop.index ~ ' as step, '
    ~ sql_text(step.label) ~ ' as label, '
    ~ sql_text(step.predicate) ~ ' as predicate, '
    ~ sql_text(step.get('role', 'none')) ~ ' as role'
) -%}
{%- endfor -%}
{%- endfor -%}
{%- endfor -%}
{{ selects | join('\nunion all\n') }}
{%- endmacro %}
