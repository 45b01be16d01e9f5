-- Checks on the data only. A run's own scoring and publication outcomes are
-- recorded after this model is read, so a rerun would see the first run's and
-- the first run none of its own: they stay in the gate (lake/check_results) and
-- in the run's Dagster checks, never in the marts.
select
    source,
    period,
    file_hash,
    check_name,
    severity,
    passed,
    details
from {{ source('ingest_log', 'check_results') }}
where source not in (
    {%- for process in var('process_check_sources') -%}
        '{{ process }}'{{ ', ' if not loop.last }}
    {%- endfor -%}
)
