{#- Sources on every engine. The lake's sources are Parquet files named in
    models/staging/_sources.yml by `meta.external_location`, which dbt-duckdb reads
    itself (a read_parquet(...) call or a file path). Other engines get the same
    files through `lake_source`: dbt-spark reads them as an external Parquet relation
    (parquet.`<glob>`), with the schema merged over the files (profiles.yml sets
    spark.sql.parquet.mergeSchema, the union_by_name of read_parquet). The location
    is written once, in _sources.yml; the spark__ version reads the path out of it.
    At parse time every engine returns dbt's own source(), so lineage is unchanged. -#}

{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {%- if not execute -%}
        {{- return(relation) -}}
    {%- endif -%}
    {{- return(adapter.dispatch('lake_source', 'govperf')(relation, source_name, table_name)) -}}
{%- endmacro %}

{% macro default__lake_source(relation, source_name, table_name) -%}
    {{- return(relation) -}}
{%- endmacro %}

{% macro spark__lake_source(relation, source_name, table_name) -%}
    {%- set path = external_parquet_path(source_name, table_name) -%}
    {{- return(relation if path is none else parquet_relation(path)) -}}
{%- endmacro %}

{#- The Parquet path (a file or a Hadoop glob) of a source with meta.external_location,
    or none: the `{name}` placeholder filled in, and the path taken out of a
    read_parquet('<path>', ...) call. -#}
{% macro external_parquet_path(source_name, table_name) -%}
    {%- set found = [] -%}
    {%- for node in (graph.sources.values() if execute else []) -%}
        {%- if node.source_name == source_name and node.name == table_name -%}
            {%- do found.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not found -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set location = found[0].meta.get('external_location') -%}
    {%- if not location -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set location = location | replace('{name}', table_name) | replace('{identifier}', found[0].identifier) -%}
    {%- if location.startswith('read_parquet(') -%}
        {%- set location = location.split("'")[1] -%}
    {%- endif -%}
    {{- return(location) -}}
{%- endmacro %}

{#- Parquet files read in place, as a relation in a from clause. -#}
{% macro parquet_relation(path) -%}
    {{- return(adapter.dispatch('parquet_relation', 'govperf')(path)) -}}
{%- endmacro %}
{% macro default__parquet_relation(path) -%}
    {{- return("parquet.`" ~ path ~ "`") -}}
{%- endmacro %}
{% macro duckdb__parquet_relation(path) -%}
    {{- return("read_parquet('" ~ path ~ "', union_by_name = true)") -}}
{%- endmacro %}

{#- Every row landed for `table` in the lake and in its history (files withdrawn from
    the inbox or overwritten), columns matched by name: a file landed before a
    column was added reads NULL there. -#}
{% macro landed_and_withdrawn_rows(table) -%}
    {{- return(adapter.dispatch('landed_and_withdrawn_rows', 'govperf')(table)) -}}
{%- endmacro %}
{% macro duckdb__landed_and_withdrawn_rows(table) -%}
        select * from {{ source('lake', table) }}
        union all by name
        -- Files withdrawn from the inbox (or overwritten under the same name).
        select * from read_parquet(
            '{{ env_var('GOVPERF_LAKE', '../var/lake') }}/history/{{ table }}/*/*.parquet', union_by_name = true)
{%- endmacro %}
{#- Spark SQL has no UNION ALL BY NAME (4.x: DataFrame unionByName only): one read of
    both folders through a Hadoop glob alternation, the schemas merged by name. -#}
{% macro spark__landed_and_withdrawn_rows(table) -%}
    {%- do source('lake', table) -%}  {#- the dependency, for lineage -#}
    {%- set lake = env_var('GOVPERF_LAKE', '../var/lake') -%}
    {%- set expected = lake ~ '/' ~ table ~ '/*/*.parquet' -%}
    {%- set landed = external_parquet_path('lake', table) if execute else expected -%}
    {%- if landed != expected -%}
        {{ exceptions.raise_compiler_error(
            "spark__landed_and_withdrawn_rows expects the lake source " ~ table ~ " at " ~ expected
            ~ ", _sources.yml says " ~ landed) }}
    {%- endif -%}
        select * from {{ parquet_relation(lake ~ '/{' ~ table ~ ',history/' ~ table ~ '}/*/*.parquet') }}
{%- endmacro %}
{% macro default__landed_and_withdrawn_rows(table) -%}
    {{ exceptions.raise_compiler_error("landed_and_withdrawn_rows has no implementation for " ~ adapter.type()) }}
{%- endmacro %}
