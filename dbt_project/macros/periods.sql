{#- The months a run scores. A Dagster partition run passes period_start and
    period_end; a plain `dbt build` scores every month. -#}

{% macro period_start() -%}
    {%- if var('period_start') -%} cast('{{ var("period_start") }}' as date)
    {%- else -%} cast('1900-01-01' as date) {%- endif -%}
{%- endmacro %}

{% macro period_end() -%}
    {%- if var('period_end') -%} cast('{{ var("period_end") }}' as date)
    {%- else -%} cast('2999-12-01' as date) {%- endif -%}
{%- endmacro %}

{#- True for months the run writes. -#}
{% macro in_period_scope(column) -%}
    ({{ column }} between {{ period_start() }} and {{ period_end() }})
{%- endmacro %}

{#- True for months the run needs to read: its own and the months before it that
    rank change, last-observation imputation and change warnings look back to
    (var lookback_months, which the Dagster asset sets from the catalogue). -#}
{% macro in_lookback_scope(column, months=none) -%}
    {%- set months = months if months is not none else var('lookback_months') -%}
    ({{ column }} between {{ dbt.dateadd('month', -months, period_start()) }} and {{ period_end() }})
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
    delete from {{ this }} where {{ in_period_scope('period') }}
    {%- endif -%}
{%- endmacro %}
