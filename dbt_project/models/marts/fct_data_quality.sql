-- One row per landed file and check: what was read, accepted and quarantined,
-- and whether each check passed. Source-level checks (such as a department's
-- missing file) have no file and zero counts.
with files as (
    select * from {{ ref('stg_ingest__file_loads') }}
),

checks as (
    select * from {{ ref('stg_ingest__check_results') }}
)

select
    cast(checks.period as date) as period,
    cast(checks.source as string) as source,
    cast(files.file_name as string) as file_name,
    cast(checks.file_hash as string) as file_hash,
    cast(coalesce(files.rows_read, 0) as bigint) as rows_read,
    cast(coalesce(files.rows_accepted, 0) as bigint) as rows_accepted,
    cast(coalesce(files.rows_quarantined, 0) as bigint) as rows_quarantined,
    cast(checks.check_name as string) as check_name,
    cast(checks.severity as string) as severity,
    cast(checks.passed as boolean) as passed,
    cast(checks.details as string) as details
from checks
left join files
    on files.file_hash = checks.file_hash and files.source = checks.source and files.period = checks.period
