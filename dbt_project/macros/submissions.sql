{#
  Resubmissions (see pipelines/ingest/submissions.py). The submission register
  says, per file and department, whether the file's rows are current for the
  period or were superseded by a later file. Staging reads current rows only;
  the history schema keeps every row ever landed, with its status.
#}

{#- The current rows of `table`. With `case_key` (the column naming a case: a case
    number, a ticket number), a case sent again in a later file (its status updated,
    closed since) is that case updated, not a second case: of its current rows, the
    one from the file of the latest period counts, since a later period's extract
    holds the later state of the case; within a period, the file delivered last
    (then the file hash and the line, so that the choice never depends on the order
    rows are read in). The earlier rows stay in the lake and the history schema. -#}
{% macro current_submission_rows(table, slice_column=none, case_key=none) %}
    {%- set current -%}
    select landed.*
    from {{ source('lake', table) }} as landed
    where not exists (
        select 1
        from {{ ref('stg_ingest__submissions') }} as register
        where register.file_hash = landed._file_hash
          and register.department_id = landed.department_id
          {% if slice_column %}and register.slice = landed.{{ slice_column }}{% endif %}
          and {{ same_slice_month('register', 'landed') }}
          and register.status <> 'current'
    )
    {%- endset -%}
    {%- if case_key %}
    select * from (
        select
            current_rows.*,
            row_number() over (
                partition by current_rows.{{ case_key }}
                order by current_rows._period desc, delivered.submitted_at desc,
                         current_rows._file_hash desc, current_rows._line desc
            ) as _case_version
        from ({{ current }}) as current_rows
        left join (
            select distinct file_hash, period, submitted_at from {{ ref('stg_ingest__submissions') }}
        ) as delivered
            on delivered.file_hash = current_rows._file_hash and delivered.period = current_rows._period
    ) as versions
    where _case_version = 1
    {%- else %}
    {{ current }}
    {%- endif %}
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
        {{ landed_and_withdrawn_rows(table) }}
    ) as landed
    left join {{ ref('stg_ingest__submissions') }} as register
        on register.file_hash = landed._file_hash
       and register.department_id = landed.department_id
       and register.period = landed._period
       {% if slice_column %}and register.slice = landed.{{ slice_column }}{% endif %}
       and {{ same_slice_month('register', 'landed') }}
{% endmacro %}

{#- A register row is about the landed row's month (a resubmission slice is a
    department, its slice and the month of the rows' own dates). Rows and registers
    written before months were kept (no _month, no month) fall back to the file's
    period and to every month. -#}
{% macro same_slice_month(register, landed) -%}
    coalesce({{ register }}.month, {{ landed }}._month, {{ landed }}._period)
        = coalesce({{ landed }}._month, {{ landed }}._period)
{%- endmacro %}
