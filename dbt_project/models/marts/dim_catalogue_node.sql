-- The aggregate nodes of the catalogue tree: 'composite' (level 0), the
-- dimensions (level 1) and any deeper groupings.
select
    cast(node_id as varchar) as node_id,
    cast(node_name as varchar) as node_name,
    cast(parent_id as varchar) as parent_id,
    cast(level as integer) as level,
    cast(weight as double) as weight,
    cast(aggregation as varchar) as aggregation,
    cast(catalogue_version as varchar) as catalogue_version,
    cast(effective_from as date) as effective_from,
    cast(effective_to as date) as effective_to,
    cast(round_digits as integer) as round_digits,
    cast(min_children as integer) as min_children,
    cast(scale_lo as double) as scale_lo,
    cast(scale_hi as double) as scale_hi
from {{ ref('stg_reference__catalogue_nodes') }}
where not is_indicator
