{{ config(materialized='table') }}
-- 年度考核, built up (docs/methodology.md §9b): the year's node scores for a catalogue
-- version whose annual.method is built_up (the version in force on 1 January).
-- Each aggregate node below the root: the weighted mean of its scores in the year's
-- quarters (or months) that have one, by the version's annual weights. The root
-- (composite, before bonus and penalty) = (1 − s) × B + s × A: B that weighted mean of
-- the periods' composites (which leave the annual-only indicators out), A the year's
-- score of the annual-only indicators (the tree over them alone), s their share of
-- the tree's weight (each one's product of normalised weights along its path, summed
-- over those the department has). Without annual-only values the root is B; without
-- any period's score, A.
with versions as (
    select catalogue_version, annual_periods
    from {{ ref('stg_reference__catalogue_versions') }}
    where annual_method = 'built_up'
),

-- The years being scored, and their departments: those the pooled year scores.
years as (
    select distinct scored.period, scored.catalogue_version, scored.department_id, versions.annual_periods
    from {{ ref('int_scores__aggregated') }} as scored
    inner join versions on versions.catalogue_version = scored.catalogue_version
    where scored.period_type = 'year' and scored.level = 0
),

-- Every kept score of the year's quarters (months) scored with the year's version,
-- with the weight of its place (a quarter scored under a version that came into
-- force during the year has other nodes and weights: it is left out of B).
period_scores as (
    select
        years.period,
        years.catalogue_version,
        years.department_id,
        kept.node_id,
        kept.level,
        kept.score,
        weights.weight
    from years
    inner join {{ ref('int_scores__kept') }} as kept
        on kept.department_id = years.department_id and kept.period_type = years.annual_periods
       and kept.catalogue_version = years.catalogue_version
       and kept.period >= years.period and kept.period < {{ add_months('years.period', 12) }}
    inner join {{ ref('stg_reference__catalogue_annual_weights') }} as weights
        on weights.catalogue_version = years.catalogue_version and weights.period_type = years.annual_periods
       and weights.position = cast(
           floor((extract(month from kept.period) - 1) / {{ months_in_period('years.annual_periods') }}) as integer
       ) + 1
),

built as (
    select period, catalogue_version, department_id, node_id, level, sum(weight * score) / sum(weight) as score
    from period_scores
    group by 1, 2, 3, 4, 5
),

tree_nodes as (
    select distinct years.period, 'year' as period_type, nodes.*
    from years
    inner join {{ ref('stg_reference__catalogue_nodes') }} as nodes on nodes.catalogue_version = years.catalogue_version
),

annual_only_scores as (
    select scored.period, scored.period_type, scored.catalogue_version, scored.department_id,
           scored.indicator_id as node_id, scored.score
    from {{ ref('int_scores__normalised') }} as scored
    inner join tree_nodes
        on tree_nodes.period = scored.period and tree_nodes.catalogue_version = scored.catalogue_version
       and tree_nodes.node_id = scored.indicator_id
    inner join years
        on years.period = scored.period and years.catalogue_version = scored.catalogue_version
       and years.department_id = scored.department_id
    where scored.period_type = 'year' and tree_nodes.annual_only
),

{{ aggregated_tree_ctes(
    'annual_only_scores', 'tree_nodes', ['period', 'period_type', 'catalogue_version'], prefix='annual'
) }},

-- Each node's share of its parent's weight, over all its siblings (not only those a
-- department has): the share the annual-only indicators take is fixed by the tree.
sibling_shares as (
    select
        period, period_type, catalogue_version, '*' as department_id, node_id, parent_id, level,
        case when parent_id is null then 1.0
             else weight / sum(weight) over (partition by period, catalogue_version, parent_id) end as weight_share
    from tree_nodes
),

{{ path_product_ctes(
    'sibling_shares', ['period', 'period_type', 'catalogue_version'], 'weight_share', prefix='path'
) }},

annual_share as (
    select annual_only_scores.period, annual_only_scores.catalogue_version, annual_only_scores.department_id,
           sum(path_all.path_product) as weight_share
    from annual_only_scores
    inner join path_all
        on path_all.period = annual_only_scores.period
       and path_all.catalogue_version = annual_only_scores.catalogue_version
       and path_all.node_id = annual_only_scores.node_id
    group by 1, 2, 3
),

composite as (
    select
        years.period,
        years.catalogue_version,
        years.department_id,
        'composite' as node_id,
        0 as level,
        case years.annual_periods when 'month' then 'months' else 'quarters' end as base_method,
        built.score as built_from,
        annual.score as annual_part,
        case when annual.score is not null then annual_share.weight_share end as annual_share,
        case when built.score is null then annual.score
             when annual.score is null then built.score
             else (1 - annual_share.weight_share) * built.score + annual_share.weight_share * annual.score end as score
    from years
    left join built
        on built.period = years.period and built.catalogue_version = years.catalogue_version
       and built.department_id = years.department_id and built.level = 0
    left join annual_all as annual
        on annual.period = years.period and annual.catalogue_version = years.catalogue_version
       and annual.department_id = years.department_id and annual.level = 0
    left join annual_share
        on annual_share.period = years.period and annual_share.catalogue_version = years.catalogue_version
       and annual_share.department_id = years.department_id
)

-- Each node's score rounded as its tree says (round, round_mode; §8a), as a pooled
-- year's are. The composite keeps its parts (B, A and s, unrounded) and what B is made
-- of ('quarters' or 'months'), which fct_rankings publishes.
select built.period, 'year' as period_type, built.catalogue_version, built.department_id, built.node_id, built.level,
       {{ round_score('built.score', 'tree_nodes.round_digits', 'tree_nodes.round_mode') }} as score,
       cast(null as string) as base_method,
       cast(null as double) as built_from, cast(null as double) as annual_part, cast(null as double) as annual_share
from built
inner join tree_nodes
    on tree_nodes.period = built.period and tree_nodes.catalogue_version = built.catalogue_version
   and tree_nodes.node_id = built.node_id
where built.level > 0
union all
select composite.period, 'year', composite.catalogue_version, composite.department_id, composite.node_id,
       composite.level, {{ round_score('composite.score', 'tree_nodes.round_digits', 'tree_nodes.round_mode') }},
       composite.base_method, cast({{ engine_round('composite.built_from', 10) }} as double),
       cast({{ engine_round('composite.annual_part', 10) }} as double),
       cast({{ engine_round('composite.annual_share', 10) }} as double)
from composite
inner join tree_nodes
    on tree_nodes.period = composite.period and tree_nodes.catalogue_version = composite.catalogue_version
   and tree_nodes.node_id = composite.node_id
where composite.score is not null
