{{ config(materialized='table') }}
-- Rank robustness (OECD/JRC handbook, uncertainty analysis): every draw of the
-- catalogue's seeded Monte Carlo design rescores the period with perturbed
-- weights and its normalisation and aggregation choices, through the very macros
-- that make the published scores (normalised_scores, aggregated_tree_ctes,
-- adjusted_composite, rank_on_score). Bonus and penalty points are applied as
-- published. Per department: the median rank and the 5th-95th percentile band.
with treated as (
    select * from {{ ref('int_indicator_treated') }}
    where treated_value is not null and {{ in_period_scope('period') }}
),

nodes as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

draws as (
    select * from {{ ref('stg_reference__robustness_draws') }}
),

choices as (
    select distinct catalogue_version, draw, normalisation, aggregation from draws
),

scopes as (
    select distinct period, period_type, catalogue_version from treated
),

-- The tree of each draw: weights times the draw's factor (the root keeps its
-- own), and the draw's aggregation unless it keeps the catalogue's.
draw_nodes as (
    select
        choices.draw,
        scopes.period,
        scopes.period_type,
        scopes.catalogue_version,
        nodes.node_id,
        nodes.parent_id,
        nodes.level,
        nodes.weight * coalesce(draws.weight_factor, 1.0) as weight,
        case when nodes.is_indicator or choices.aggregation = 'catalogue' then nodes.aggregation
             else choices.aggregation end as aggregation
    from scopes
    inner join choices on choices.catalogue_version = scopes.catalogue_version
    inner join nodes on nodes.catalogue_version = scopes.catalogue_version
    left join draws
        on draws.catalogue_version = choices.catalogue_version
       and draws.draw = choices.draw
       and draws.node_id = nodes.node_id
),

inputs as (
    select
        choices.draw,
        t.period, t.period_type, t.catalogue_version, t.department_id, t.indicator_id,
        t.treated_value as value,
        i.direction,
        case when choices.normalisation = 'catalogue' then i.normalisation else choices.normalisation end
            as normalisation,
        i.target, i.goalpost_lo, i.goalpost_hi
    from treated as t
    inner join nodes as i on i.node_id = t.indicator_id and i.catalogue_version = t.catalogue_version
    inner join choices on choices.catalogue_version = t.catalogue_version
),

scores as (
    select draw, period, period_type, catalogue_version, department_id, indicator_id as node_id, score
    from ({{ normalised_scores('inputs', ['draw', 'period', 'period_type', 'catalogue_version']) }}) as normalised
),

{{ aggregated_tree_ctes('scores', 'draw_nodes', ['draw', 'period', 'period_type', 'catalogue_version'], prefix='tree') }},

published as (
    select period, period_type, department_id, bonus_points from {{ ref('int_rankings') }}
),

draw_ranks as (
    select
        tree_all.draw,
        tree_all.period,
        tree_all.period_type,
        tree_all.department_id,
        {{ rank_on_score(adjusted_composite('tree_all.score', 'published.bonus_points'),
                         'tree_all.draw, tree_all.period, tree_all.period_type') }} as draw_rank
    from tree_all
    inner join published
        on published.period = tree_all.period and published.period_type = tree_all.period_type
       and published.department_id = tree_all.department_id
    where tree_all.level = 0
)

select
    period,
    period_type,
    department_id,
    count(*) as draws,
    cast({{ percentile('draw_rank', 0.5) }} as double) as rank_median,
    cast({{ percentile('draw_rank', 0.05) }} as double) as rank_p05,
    cast({{ percentile('draw_rank', 0.95) }} as double) as rank_p95
from draw_ranks
group by 1, 2, 3
