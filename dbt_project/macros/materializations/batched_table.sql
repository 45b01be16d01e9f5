{#- A table built in batches, one statement each, so that a model whose working set
    grows with its input (the Monte Carlo of rank robustness) runs in bounded memory.

    The model filters its rows with `{{ batch_number() }}`, and names in config
    `batches_from` a model with a `batch` column (1..n): batch 1 creates the table,
    each later batch inserts into it, all into a scratch relation that replaces the
    old table only once every batch succeeded. On engines without session variables
    (batch_number() is null there) use materialized='table': the model then reads
    every batch in one statement (macro batched_materialization). -#}

{% materialization batched_table, adapter='duckdb' %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set backup_relation = make_backup_relation(
      target_relation, 'table' if existing_relation is none else existing_relation.type) -%}
  {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
  {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set counted = run_query(
      'select coalesce(max(batch), 0) from ' ~ ref(config.require('batches_from'))) -%}
  {%- set batches = counted.columns[0].values()[0] | int -%}
  {% call statement('batch_1_of_' ~ batches) -%} set variable govperf_batch = 1 {%- endcall %}
  {% call statement('main') -%}
    {{ create_table_as(False, intermediate_relation, sql) }}
  {%- endcall %}
  {% for batch in range(2, batches + 1) %}
    {% call statement('batch_' ~ batch ~ '_of_' ~ batches) -%} set variable govperf_batch = {{ batch }} {%- endcall %}
    {% call statement('insert_batch_' ~ batch) -%}
      insert into {{ intermediate_relation }} {{ sql }}
    {%- endcall %}
  {% endfor %}
  {% call statement('batches_done') -%} reset variable govperf_batch {%- endcall %}

  {% if existing_relation is not none %}
    {{ adapter.rename_relation(existing_relation, backup_relation) }}
  {% endif %}
  {{ adapter.rename_relation(intermediate_relation, target_relation) }}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ drop_relation_if_exists(backup_relation) }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#- The batch a batched_table statement builds, or null outside one (every batch). -#}
{% macro batch_number() -%}
    {{ return(adapter.dispatch('batch_number', 'govperf')()) }}
{%- endmacro %}
{% macro default__batch_number() -%}
    cast(null as integer)
{%- endmacro %}
{% macro duckdb__batch_number() -%}
    getvariable('govperf_batch')
{%- endmacro %}

{#- batched_table where the engine has it, else a plain table of every batch at once. -#}
{% macro batched_materialization() -%}
    {{ return('batched_table' if target.type == 'duckdb' else 'table') }}
{%- endmacro %}
