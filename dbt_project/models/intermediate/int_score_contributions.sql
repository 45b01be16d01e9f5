{{ config(materialized='table') }}
-- 得分构成: each period's composite (fct_rankings.composite_score, full precision) as
-- a sum of terms, per department. An indicator contributes effective_weight × score,
-- its effective weight being the product of the normalised weights along its
-- catalogue path (each weight divided by the sum over the children present, so a
-- missing child's weight is shared out). The named terms hold the rest:
--   geometric  base score − Σ indicator contributions: what geometric nodes make of
--              their inputs beyond a weighted sum, and what rounding at each level
--              (`round`) moves (0 in a catalogue without either)
--   bonus      加分 within its cap
--   penalty    减分 within its cap (negative)
--   clamp      the composite kept in 0..100: composite − (base + bonus + penalty)
-- fct_score_changes splits the change between two periods from these rows
-- (docs/methodology.md §9a).
with leaves as (
    select period, period_type, catalogue_version, department_id, indicator_id as node_id, score
    from {{ ref('int_scores__normalised') }}
),

aggregates as (
    select period, period_type, catalogue_version, department_id, node_id, score
    from {{ ref('int_scores__aggregated') }}
),

nodes as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

rankings as (
    select period, period_type, catalogue_version, department_id, base_score, bonus, penalty, composite_score
    from {{ ref('int_rankings') }}
),

-- A built-up year (methodology §9b) is not a sum over the tree: it has no terms.
built_up as (
    select catalogue_version from {{ ref('stg_reference__catalogue_versions') }} where annual_method = 'built_up'
),

present as (
    select
        scored.period, scored.period_type, scored.catalogue_version, scored.department_id, scored.node_id,
        nodes.parent_id, nodes.level, nodes.is_indicator, scored.score,
        -- the root's weight is 1; any other node's is shared among the children present
        case when nodes.parent_id is null then 1.0
             else nodes.weight / sum(nodes.weight) over (
                 partition by scored.period, scored.period_type, scored.catalogue_version,
                              scored.department_id, nodes.parent_id)
        end as local_weight
    from (select * from leaves union all select * from aggregates) as scored
    inner join nodes on nodes.catalogue_version = scored.catalogue_version and nodes.node_id = scored.node_id
),

{{ path_product_ctes('present', ['period', 'period_type', 'catalogue_version'], 'local_weight', prefix='path') }},

indicator_terms as (
    select
        period, period_type, catalogue_version, department_id,
        node_id as term,
        'indicator' as term_type,
        score,
        local_weight as weight,
        path_product as effective_weight,
        path_product * score as contribution
    from path_all
    where is_indicator
),

-- versions whose composite is not a weighted sum of indicator scores: geometric
-- nodes, or scores rounded at a level (`round`); their difference is the term `geometric`
has_geometric as (
    select distinct catalogue_version from nodes
    where (aggregation = 'geometric' and not is_indicator) or round_digits is not null
),

linear_sums as (
    select period, period_type, catalogue_version, department_id, sum(contribution) as linear_sum
    from indicator_terms
    group by 1, 2, 3, 4
),

named_terms as (
    select
        r.period, r.period_type, r.catalogue_version, r.department_id, 'geometric' as term,
        case when g.catalogue_version is null then 0.0 else r.base_score - coalesce(l.linear_sum, 0) end
            as contribution
    from rankings as r
    left join has_geometric as g on g.catalogue_version = r.catalogue_version
    left join linear_sums as l
        on l.period = r.period and l.period_type = r.period_type
       and l.catalogue_version = r.catalogue_version and l.department_id = r.department_id
    union all
    select period, period_type, catalogue_version, department_id, 'bonus', bonus from rankings
    union all
    select period, period_type, catalogue_version, department_id, 'penalty', penalty from rankings
    union all
    select period, period_type, catalogue_version, department_id, 'clamp',
           composite_score - (base_score + bonus + penalty)
    from rankings
),

final as (
    select
        period, period_type, catalogue_version, department_id, term, term_type,
        cast({{ engine_round('score', 10) }} as double) as score,
        cast({{ engine_round('weight', 10) }} as double) as weight,
        cast({{ engine_round('effective_weight', 10) }} as double) as effective_weight,
        cast({{ engine_round('contribution', 10) }} as double) as contribution
    from indicator_terms
    union all
    select
        period, period_type, catalogue_version, department_id, term, term as term_type,
        cast(null as double), cast(null as double), cast(null as double),
        cast({{ engine_round('contribution', 10) }} as double)
    from named_terms
)

select final.*
from final
left join built_up on built_up.catalogue_version = final.catalogue_version
where not (final.period_type = 'year' and built_up.catalogue_version is not null)
