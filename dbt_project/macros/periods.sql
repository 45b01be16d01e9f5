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
    months; a quarter or a year when its last month is (so a quarter is scored once
    complete, by the run of its third month, and a year by the run of its December).
    Pass the period_type column for tables that hold several. -#}
{% macro in_period_scope(column, period_type=none) -%}
    {%- if period_type -%}
    ({{ last_month_of(column, period_type) }} between {{ period_start() }} and {{ period_end() }})
    {%- else -%}
    ({{ column }} between {{ period_start() }} and {{ period_end() }})
    {%- endif -%}
{%- endmacro %}

{#- How many months a period of `period_type` spans (a column or a quoted literal). -#}
{% macro months_in_period(period_type) -%}
    (case {{ period_type }} when 'year' then 12 when 'quarter' then 3 else 1 end)
{%- endmacro %}

{#- The first day of the last month of a period. -#}
{% macro last_month_of(period, period_type) -%}
    {{ add_months(period, months_in_period(period_type) ~ ' - 1') }}
{%- endmacro %}

{#- The period of the same type before `period`. -#}
{% macro period_before(period, period_type) -%}
    {{ add_months(period, '-' ~ months_in_period(period_type)) }}
{%- endmacro %}

{#- The first month a run reads: the months before its first month that rank
    change, last-observation imputation and change warnings look back to
    (lookback_months, set by the Dagster asset from the catalogue), and at least the
    start of that month's quarter, which a quarter's pooled scores need; a run that
    reaches a December reads from that year's January, for the year's pooled scores. -#}
{% macro lookback_start(months=none) -%}
    {%- set months = months if months is not none else build_setting('lookback_months', 1) | int -%}
    {%- set year_start = month_of(dbt.date_trunc('year', period_start())) -%}
    least({{ dbt.dateadd('month', -months, period_start()) }}, {{ month_of(dbt.date_trunc('quarter', period_start())) }},
          case when {{ add_months(year_start, 11) }} <= {{ period_end() }} then {{ year_start }}
               else {{ period_start() }} end)
{%- endmacro %}

{#- True for months the run needs to read. -#}
{% macro in_lookback_scope(column, months=none) -%}
    ({{ column }} between {{ lookback_start(months) }} and {{ period_end() }})
{%- endmacro %}

{#- The grains every indicator is computed at: cross join a source's rows with
    this, then group by grain_period(month, period_type). A quarter and a year pool
    their months' rows (PRODUCT.md: a quarter's scores come from its pooled data;
    docs/methodology.md §9b: the year's pooled scores). -#}
{% macro period_grains(include_year=true) -%}
    (select 'month' as period_type union all select 'quarter' as period_type
     {%- if include_year %} union all select 'year' as period_type{% endif %})
{%- endmacro %}

{#- The first day of the period of `period_type` a month falls in. -#}
{% macro grain_period(month_column, period_type) -%}
    (case {{ period_type }} when 'quarter' then {{ month_of(dbt.date_trunc('quarter', month_column)) }}
          when 'year' then {{ month_of(dbt.date_trunc('year', month_column)) }}
          else {{ month_column }} end)
{%- endmacro %}

{#- Rows a grain needs: months the run reads, or quarters and years it scores. -#}
{% macro in_grain_scope(month_column, period_type) -%}
    (case when {{ period_type }} = 'month' then {{ in_lookback_scope(month_column) }}
          else {{ in_period_scope(grain_period(month_column, period_type), period_type) }} end)
{%- endmacro %}

{#- The first day after a period. -#}
{% macro period_after(period, period_type) -%}
    {{ add_months(period, months_in_period(period_type)) }}
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
    {{ return(adapter.dispatch('delete_months_in_scope', 'govperf')()) }}
{%- endmacro %}
{% macro default__delete_months_in_scope() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_period_scope('period', 'period_type') }}
    {%- endif -%}
{%- endmacro %}
{#- Spark: a Parquet table cannot be deleted from (that needs Delta or Iceberg). The facts
    are partitioned by period_type and period (period_partition_by) and written with
    insert_overwrite (period_incremental_strategy), which replaces the partitions the
    new rows fall in; the partitions in scope are dropped first, so that a period that
    now yields no rows loses its old ones too. The statements run here; the hook's own
    text is empty. -#}
{% macro spark__delete_months_in_scope() -%}
    {%- if execute and is_incremental() -%}
        {%- set start = build_setting('period_start', '1900-01-01') -%}
        {%- set end = build_setting('period_end', '2999-12-01') -%}
        {%- set months = {'month': 0, 'quarter': 2, 'year': 11} -%}
        {%- for row in run_query('show partitions ' ~ this) -%}
            {%- set spec = {} -%}
            {%- for part in row[0].split('/') -%}
                {%- do spec.update({part.split('=')[0]: part.split('=', 1)[1]}) -%}
            {%- endfor -%}
            {%- set first = modules.datetime.date.fromisoformat(spec['period']) -%}
            {%- set index = first.year * 12 + first.month - 1 + months.get(spec['period_type'], 0) -%}
            {%- set last = '%04d-%02d-01' % (index // 12, index % 12 + 1) -%}
            {%- if start <= last <= end -%}
                {%- do run_query("alter table " ~ this ~ " drop if exists partition (period_type = '"
                    ~ spec['period_type'] ~ "', period = date'" ~ spec['period'] ~ "')") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- How the monthly facts' incremental runs write: appended after the pre-hook's delete,
    or (Spark) by partition overwrite. -#}
{% macro period_incremental_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'append') }}
{%- endmacro %}
{% macro period_partition_by() -%}
    {{ return(['period_type', 'period'] if target.type == 'spark' else none) }}
{%- endmacro %}
