{#- The months a run scores. A Dagster partition run passes them in the environment
    (GOVPERF_PERIOD_START, GOVPERF_PERIOD_END, GOVPERF_LOOKBACK_MONTHS; build_setting
    reads any GOVPERF_<NAME> the same way), read only when
    a model is compiled for execution: dbt then never sees them at parse time, and a new
    window reuses the saved parse (a changed --vars makes dbt parse the whole project
    again, about 2.5 s). A var of the same name (a hand-typed `dbt build --vars`, a unit
    test's overrides) wins. Neither set: a plain `dbt build` scores every month. -#}

{% macro build_setting(name, default) -%}
    {%- set given = var(name, none) -%}
    {%- if given is none and execute -%}
        {%- set given = env_var('GOVPERF_' ~ name | upper, '') -%}
    {%- endif -%}
    {{- return(given if given not in (none, '') else default) -}}
{%- endmacro %}

{% macro period_start() -%}
    cast('{{ build_setting('period_start', '1900-01-01') }}' as date)
{%- endmacro %}

{% macro period_end() -%}
    cast('{{ build_setting('period_end', '2999-12-01') }}' as date)
{%- endmacro %}

{#- True for periods the run writes. A month is in scope when it is one of the run's
    months; a quarter when its last month is (so a quarter is scored once complete,
    by the run of its third month). Pass the period_type column for tables that
    hold both. -#}
{% macro in_period_scope(column, period_type=none) -%}
    {%- if period_type -%}
    ((case when {{ period_type }} = 'quarter' then {{ add_months(column, 2) }} else {{ column }} end)
     between {{ period_start() }} and {{ period_end() }})
    {%- else -%}
    ({{ column }} between {{ period_start() }} and {{ period_end() }})
    {%- endif -%}
{%- endmacro %}

{#- The first month a run reads: the months before its first month that rank
    change, last-observation imputation and change warnings look back to
    (lookback_months, set by the Dagster asset from the catalogue), and at least the
    start of that month's quarter, which a quarter's pooled scores need. -#}
{% macro lookback_start(months=none) -%}
    {%- set months = months if months is not none else build_setting('lookback_months', 1) | int -%}
    least({{ dbt.dateadd('month', -months, period_start()) }}, {{ month_of(dbt.date_trunc('quarter', period_start())) }})
{%- endmacro %}

{#- True for months the run needs to read. -#}
{% macro in_lookback_scope(column, months=none) -%}
    ({{ column }} between {{ lookback_start(months) }} and {{ period_end() }})
{%- endmacro %}

{#- The two grains every indicator is computed at: cross join a source's rows with
    this, then group by grain_period(month, period_type). A quarter pools its
    months' rows (PRODUCT.md: a quarter's scores come from its pooled data). -#}
{% macro period_grains() -%}
    (select 'month' as period_type union all select 'quarter' as period_type)
{%- endmacro %}

{% macro grain_period(month_column, period_type) -%}
    (case when {{ period_type }} = 'quarter' then {{ month_of(dbt.date_trunc('quarter', month_column)) }}
          else {{ month_column }} end)
{%- endmacro %}

{#- Rows a grain needs: months the run reads, or quarters it scores. -#}
{% macro in_grain_scope(month_column, period_type) -%}
    (case when {{ period_type }} = 'quarter'
          then {{ in_period_scope(add_months(month_of(dbt.date_trunc('quarter', month_column)), 2)) }}
          else {{ in_lookback_scope(month_column) }} end)
{%- endmacro %}

{#- The first day after a period. -#}
{% macro period_after(period, period_type) -%}
    {{ add_months(period, "case when " ~ period_type ~ " = 'quarter' then 3 else 1 end") }}
{%- endmacro %}

{% macro month_of(expression) -%}
    cast({{ dbt.date_trunc('month', expression) }} as date)
{%- endmacro %}

{% macro add_months(expression, months) -%}
    cast({{ dbt.dateadd('month', months, expression) }} as date)
{%- endmacro %}

{#- Pre-hook of the monthly facts: a run replaces every month in its scope, even a
    month that now yields no rows (delete+insert would leave that month's old rows). -#}
{% macro delete_months_in_scope() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_period_scope('period', 'period_type') }}
    {%- endif -%}
{%- endmacro %}
