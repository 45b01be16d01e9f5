{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- 领导点评: the score and remarks per department and quarter, as reviewed (remarks
-- were masked for personal data at ingest). The department page shows them.
select
    quarter_start as period,
    cast('quarter' as string) as period_type,
    department_id,
    cast(score as double) as score,
    remarks,
    file_hash,
    cast(source_line as bigint) as source_line
from {{ ref('stg_lake__leader_reviews') }}
where {{ in_period_scope('quarter_start', "'quarter'") }}
