-- Every row ingest rejected, with its reason; raw_text was masked before it landed.
select
    source,
    period,
    file_name,
    file_hash,
    line,
    reason,
    raw_text
from {{ source('ingest_log', 'quarantine') }}
