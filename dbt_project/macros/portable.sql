{#- Functions whose spelling differs between engines. Each has a default that
    follows standard SQL and a DuckDB spelling; dbt-spark falls back to the default
    or gets its own `spark__` version. -#}

{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'govperf')(expression)) }}
{%- endmacro %}
{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}
{% macro duckdb__median(expression) -%}
    quantile_cont({{ expression }}, 0.5)
{%- endmacro %}
{% macro spark__median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{#- Hours between two timestamps, as a double. -#}
{% macro hours_between(start, finish) -%}
    {{ return(adapter.dispatch('hours_between', 'govperf')(start, finish)) }}
{%- endmacro %}
{% macro default__hours_between(start, finish) -%}
    ({{ dbt.datediff(start, finish, 'second') }} / 3600e0)
{%- endmacro %}

{#- One row per day between two dates, inclusive, as column calendar_date. -#}
{% macro date_series(first_day, last_day) -%}
    {{ return(adapter.dispatch('date_series', 'govperf')(first_day, last_day)) }}
{%- endmacro %}
{% macro default__date_series(first_day, last_day) -%}
    select cast(d as date) as calendar_date
    from (select explode(sequence(cast('{{ first_day }}' as date), cast('{{ last_day }}' as date))) as d) as days
{%- endmacro %}
{% macro duckdb__date_series(first_day, last_day) -%}
    select cast(d as date) as calendar_date
    from range(cast('{{ first_day }}' as date), cast('{{ last_day }}' as date) + interval 1 day, interval 1 day) as t(d)
{%- endmacro %}

{#- Day of week, 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(expression) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'govperf')(expression)) }}
{%- endmacro %}
{% macro default__iso_day_of_week(expression) -%}
    extract(isodow from {{ expression }})
{%- endmacro %}
{% macro spark__iso_day_of_week(expression) -%}
    (((dayofweek({{ expression }}) + 5) % 7) + 1)
{%- endmacro %}

{#- Rounding used for every stored score, so reruns are byte-identical: to the
    version's stored_decimals where a score is (4 by default and elsewhere), in the
    version's round_mode where given, for the scores ranks are taken on (composite and
    node scores: with stored_decimals equal to rank_decimals, the stored score is the one
    ranked; engine, the default, is the engine's round as before). round_to is a long
    expression: sqlfluff's parse of a model slows sharply with two of them, so scores
    that are not ranked (base_score, indicator scores) keep the engine's round. -#}
{% macro stored_score(expression, decimals='4', mode=none) -%}
    {%- if mode is none -%}
    cast({{ engine_round(expression, 'coalesce(' ~ decimals ~ ', 4)') }} as double)
    {%- else -%}
    cast({{ round_to(expression, 'coalesce(' ~ decimals ~ ', 4)', mode) }} as double)
    {%- endif -%}
{%- endmacro %}
{#- Raw values keep 12 significant digits: enough to drop the run-to-run noise of
    parallel sums, and exact for a per-capita figure of 1e-8 as for a count. Engines
    whose round() takes a computed scale round in decimal; the default scales to a
    mantissa first, so that its rounding has a constant scale. -#}
{% macro stored_value(expression) -%}
    {{ return(adapter.dispatch('stored_value', 'govperf')(expression)) }}
{%- endmacro %}
{% macro default__stored_value(expression) -%}
{%- set magnitude = 'power(10, floor(log10(abs(' ~ expression ~ '))))' -%}
    cast(case when abs({{ expression }}) < 1e-300 then {{ expression }}
              else round({{ expression }} / {{ magnitude }}, 11) * {{ magnitude }} end as double)
{%- endmacro %}
{% macro duckdb__stored_value(expression) -%}
    cast(case when {{ expression }} = 0 then {{ expression }}
              else round({{ expression }}, cast(11 - floor(log10(abs({{ expression }}))) as integer)) end as double)
{%- endmacro %}
{#- Spark: DuckDB's rounding (engine_round), at DuckDB's computed scale. -#}
{% macro spark__stored_value(expression) -%}
    cast(case when {{ expression }} = 0 then {{ expression }}
              else {{ engine_round(expression, 'cast(11 - floor(log10(abs(' ~ expression ~ '))) as integer)') }} end
         as double)
{%- endmacro %}

{#- A percentile of a group (an aggregate), interpolated between values. -#}
{% macro percentile(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'govperf')(expression, fraction)) }}
{%- endmacro %}
{% macro default__percentile(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}
{% macro duckdb__percentile(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}
{% macro spark__percentile(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}

{#- One row per keyword of a ','-joined keyword string (comment_keywords), in a
    select list. -#}
{% macro split_keywords(expression) -%}
    {{ return(adapter.dispatch('split_keywords', 'govperf')(expression)) }}
{%- endmacro %}
{% macro default__split_keywords(expression) -%}
    explode(split({{ expression }}, ','))
{%- endmacro %}
{% macro duckdb__split_keywords(expression) -%}
    unnest(string_split({{ expression }}, ','))
{%- endmacro %}

{#- dbt.listagg on Spark: dbt-spark's version drops the order (collect_list, with a
    warning); Spark 4 has listagg ... within group (order by ...). dbt_project.yml's
    dispatch puts this project before dbt for dbt's own macros. -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with limit_num is not written for Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}
