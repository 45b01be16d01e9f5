-- One row per indicator and catalogue version. `dimension` is the indicator's
-- parent node; `weight` is relative within that parent. The treatment columns say
-- how the indicator's outliers and missing values are handled (docs/methodology.md).
select
    cast(node_id as string) as indicator_id,
    cast(node_name as string) as indicator_name,
    cast(parent_id as string) as dimension,
    cast(direction as string) as direction,
    cast(weight as double) as weight,
    cast(unit as string) as unit,
    cast(normalisation as string) as normalisation,
    cast(target as double) as target,
    cast(catalogue_version as string) as catalogue_version,
    cast(goalpost_lo as double) as goalpost_lo,
    cast(goalpost_hi as double) as goalpost_hi,
    cast(bound_lo as double) as bound_lo,
    cast(bound_hi as double) as bound_hi,
    cast(change_basis as string) as change_basis,
    cast(min_obs as integer) as min_obs,
    cast(warn_amber as double) as warn_amber,
    cast(warn_red as double) as warn_red,
    cast(effective_from as date) as effective_from,
    cast(effective_to as date) as effective_to,
    cast(denominator as string) as denominator,
    cast(outlier_method as string) as outlier_method,
    cast(missing_method as string) as missing_method,
    cast(max_lookback as integer) as max_lookback
from {{ ref('stg_reference__catalogue_nodes') }}
where is_indicator
