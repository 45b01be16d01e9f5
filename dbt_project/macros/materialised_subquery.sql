{#- A subquery that many parts of a model read, materialised once on Spark.
    Spark inlines every reference to a CTE: a CTE that holds an unrolled tree
    (aggregated_tree_ctes) and is read, through others, twenty times is planned twenty
    times, and the plan of fct_score_changes outgrew a 4 GB driver. A cached view does
    not help: each read still copies the view's whole plan while Spark analyses the
    query (measured: out of heap the same). So on Spark the subquery is written as a
    Parquet table, `<target schema>.<model>__<name>`, when the model is rendered for
    execution, and the model reads a plain scan of it; `release_materialised_subquery`
    drops it in the model's post-hook. The target schema is not the marts': the marts'
    views and their digests never see it, even after a failed build; a folder left by a
    JVM that died while writing it is written over. `dbt compile` or `dbt show` on Spark
    also write it (they render for execution) and leave it. Elsewhere (DuckDB, where
    dbt's unit tests run) it is the subquery itself, inline. -#}
{% macro materialised_subquery(name, sql) -%}
    {{ return(adapter.dispatch('materialised_subquery', 'govperf')(name, sql)) }}
{%- endmacro %}
{% macro default__materialised_subquery(name, sql) -%}
({{ sql }})
{%- endmacro %}
{% macro spark__materialised_subquery(name, sql) -%}
{%- set table = target.schema ~ '.' ~ this.identifier ~ '__' ~ name -%}
{%- if execute -%}
    {%- do run_query('create schema if not exists ' ~ target.schema) -%}
    {%- do run_query('drop table if exists ' ~ table) -%}
    {%- do run_query('set spark.sql.legacy.allowNonEmptyLocationInCTAS = true') -%}
    {%- do run_query('create table ' ~ table ~ ' using parquet as ' ~ sql) -%}
{%- endif -%}
{{ table }}
{%- endmacro %}

{#- The post-hook that drops a materialised subquery's table (nothing elsewhere). -#}
{% macro release_materialised_subquery(name) -%}
    {{ return(adapter.dispatch('release_materialised_subquery', 'govperf')(name)) }}
{%- endmacro %}
{% macro default__release_materialised_subquery(name) -%}
{%- endmacro %}
{% macro spark__release_materialised_subquery(name) -%}
    drop table if exists {{ target.schema }}.{{ this.identifier }}__{{ name }}
{%- endmacro %}
