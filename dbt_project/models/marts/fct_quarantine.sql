{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- The quarantine of the lake (lake/quarantine/<source>/<month>/), for BI tools:
-- every rejected row of the files landed for a month, with its line, reason and
-- masked raw text. Rows of files withdrawn from the inbox are in history.
select
    cast(period as date) as period,
    cast('month' as string) as period_type,
    cast(source as string) as source,
    cast(file_name as string) as file_name,
    cast(file_hash as string) as file_hash,
    cast(line as bigint) as source_line,
    cast(reason as string) as reason,
    cast(raw_text as string) as raw_text
from {{ ref('stg_ingest__quarantine') }}
where {{ in_period_scope('period') }}
