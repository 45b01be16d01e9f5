select
    source,
    period,
    department_id,
    slice,
    month,
    file_name,
    file_hash,
    submitted_at,
    deadline,
    rows,
    status,
    superseded_by_file,
    superseded_by_hash
from {{ source('ingest_log', 'submissions') }}
