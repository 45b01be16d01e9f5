select
    source,
    period,
    file_name,
    file_hash,
    file_format,
    layout,
    encoding,
    rows_read,
    rows_accepted,
    rows_quarantined,
    file_error,
    archive_path
from {{ source('ingest_log', 'file_loads') }}
