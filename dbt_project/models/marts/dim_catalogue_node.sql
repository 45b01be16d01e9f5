-- The aggregate nodes of the catalogue tree: 'composite' (level 0), the
-- dimensions (level 1) and any deeper groupings, with the version's settings the
-- bulletin shows scores and ranks by (scale, rank_decimals, round_mode, rank_ties;
-- methodology §8a).
select
    cast(nodes.node_id as string) as node_id,
    cast(nodes.node_name as string) as node_name,
    cast(nodes.parent_id as string) as parent_id,
    cast(nodes.level as integer) as level,
    cast(nodes.weight as double) as weight,
    cast(nodes.aggregation as string) as aggregation,
    cast(nodes.catalogue_version as string) as catalogue_version,
    cast(nodes.effective_from as date) as effective_from,
    cast(nodes.effective_to as date) as effective_to,
    cast(nodes.round_digits as integer) as round_digits,
    cast(nodes.min_children as integer) as min_children,
    cast(nodes.scale_lo as double) as scale_lo,
    cast(nodes.scale_hi as double) as scale_hi,
    cast(versions.rank_decimals as integer) as rank_decimals,
    cast(versions.round_mode as string) as round_mode,
    cast(versions.rank_ties as string) as rank_ties
from {{ ref('stg_reference__catalogue_nodes') }} as nodes
left join {{ ref('stg_reference__catalogue_versions') }} as versions
    on versions.catalogue_version = nodes.catalogue_version
where not nodes.is_indicator
