select
    department_id,
    department_name,
    peer_group,
    parent_id,
    valid_from,
    valid_to,
    merged_into,
    successor_in_year
from {{ source('reference', 'departments') }}
