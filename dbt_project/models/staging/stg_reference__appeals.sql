-- The appeals (申诉复核) and their decisions, one row per appeal (pipelines/appeals).
select * from {{ source('reference', 'appeals') }}
