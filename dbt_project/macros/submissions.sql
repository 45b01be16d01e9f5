{#
  Resubmissions (see pipelines/ingest/submissions.py). The submission register
  says, per file and department, whether the file's rows are current for the
  period or were superseded by a later file. Staging reads current rows only;
  the history schema keeps every row ever landed, with its status.
#}

{% macro current_submission_rows(table, slice_column=none) %}
    select landed.*
    from {{ source('lake', table) }} as landed
    where not exists (
        select 1
        from {{ ref('stg_ingest__submissions') }} as register
        where register.file_hash = landed._file_hash
          and register.department_id = landed.department_id
          {% if slice_column %}and register.slice = landed.{{ slice_column }}{% endif %}
          and register.status <> 'current'
    )
{% endmacro %}

{% macro submission_history(table, slice_column=none) %}
    -- Every row landed for {{ table }}: current, superseded by a resubmission,
    -- or from a file withdrawn from the inbox.
    select
        landed.*,
        coalesce(register.status, 'current') as submission_status,
        register.superseded_by_file,
        register.submitted_at
    from (
        select * from {{ source('lake', table) }}
        union all by name
        -- Files withdrawn from the inbox (or overwritten under the same name).
        select * from read_parquet(
            '{{ env_var('GOVPERF_LAKE', '../var/lake') }}/history/{{ table }}/*/*.parquet', union_by_name = true)
    ) as landed
    left join {{ ref('stg_ingest__submissions') }} as register
        on register.file_hash = landed._file_hash
       and register.department_id = landed.department_id
       and register.period = landed._period
       {% if slice_column %}and register.slice = landed.{{ slice_column }}{% endif %}
{% endmacro %}
