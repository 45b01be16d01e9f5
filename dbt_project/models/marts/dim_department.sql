select
    cast(department_id as varchar) as department_id,
    cast(department_name as varchar) as department_name,
    cast(peer_group as varchar) as peer_group,
    cast(parent_id as varchar) as parent_id,
    cast(valid_from as date) as valid_from,
    cast(valid_to as date) as valid_to,
    cast(merged_into as varchar) as merged_into
from {{ ref('stg_reference__departments') }}
