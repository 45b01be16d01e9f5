select
    source,
    period,
    file_hash,
    check_name,
    severity,
    passed,
    details
from {{ source('ingest_log', 'check_results') }}
