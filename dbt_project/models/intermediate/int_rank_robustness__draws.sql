{{ config(materialized=batched_materialization(), batches_from='int_rank_robustness__scenarios') }}
-- The rank of every department in every draw of the rank-robustness Monte Carlo
-- (int_rank_robustness summarises them): each draw rescores its period with perturbed
-- weights and its normalisation and aggregation choices, through the very macros
-- that make the published scores (normalised_scores, aggregated_tree_ctes,
-- adjusted_composite, rank_on_score). Bonus and penalty points are applied as
-- published.
--
-- Built a batch of scenarios at a time (macros/materializations/batched_table.sql):
-- the working set grows with scenarios x departments x indicators (3.2 GB for the
-- sample's 15 months at once), a batch's is bounded. For speed, a normalisation is
-- computed once per method choice within a batch (it does not depend on the
-- weights), and each (draw, period) is one integer scenario key.
with scenarios as (
    select * from {{ ref('int_rank_robustness__scenarios') }}
    where batch = coalesce({{ batch_number() }}, batch)
),

treated as (
    select * from {{ ref('int_indicator_treated') }}
    where treated_value is not null and {{ in_period_scope('period', 'period_type') }}
),

nodes as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

draws as (
    select * from {{ ref('stg_reference__robustness_draws') }}
),

normalisation_inputs as (
    select distinct
        scenarios.normalisation_id,
        t.department_id,
        t.indicator_id,
        t.treated_value as value,
        i.direction,
        case when scenarios.normalisation = 'catalogue' then i.normalisation else scenarios.normalisation end
            as normalisation,
        i.target, i.goalpost_lo, i.goalpost_hi, i.scale_lo, i.scale_hi, i.round_digits, i.round_mode
    from treated as t
    inner join scenarios
        on scenarios.period = t.period and scenarios.period_type = t.period_type
       and scenarios.catalogue_version = t.catalogue_version
    inner join nodes as i on i.node_id = t.indicator_id and i.catalogue_version = t.catalogue_version
    -- annual-only indicators count in the year only (int_scores__normalised)
    where t.period_type = 'year' or not coalesce(i.annual_only, false)
),

normalised as (
    {{ normalised_scores('normalisation_inputs', ['normalisation_id']) }}
),

scores as (
    select scenarios.scenario_id, normalised.department_id, normalised.indicator_id as node_id, normalised.score
    from scenarios
    inner join normalised on normalised.normalisation_id = scenarios.normalisation_id
),

-- The tree of each scenario: weights times the draw's factor (the root keeps its
-- own), and the draw's aggregation unless it keeps the catalogue's.
scenario_nodes as (
    select
        scenarios.scenario_id,
        nodes.node_id,
        nodes.parent_id,
        nodes.level,
        nodes.weight * coalesce(draws.weight_factor, 1.0) as weight,
        case when nodes.is_indicator or scenarios.aggregation = 'catalogue' then nodes.aggregation
             else scenarios.aggregation end as aggregation,
        nodes.round_digits,
        nodes.round_mode,
        nodes.min_children
    from scenarios
    inner join nodes on nodes.catalogue_version = scenarios.catalogue_version
    left join draws
        on draws.catalogue_version = scenarios.catalogue_version
       and draws.draw = scenarios.draw
       and draws.node_id = nodes.node_id
),

{{ aggregated_tree_ctes('scores', 'scenario_nodes', ['scenario_id'], prefix='tree') }},

published as (
    select period, period_type, department_id, bonus_points from {{ ref('int_rankings') }}
),

draw_scores as (
    select
        tree_all.scenario_id,
        scenarios.period,
        scenarios.period_type,
        scenarios.draw,
        tree_all.department_id,
        versions.rank_decimals,
        versions.round_mode,
        versions.rank_ties,
        {{ adjusted_composite('tree_all.score', 'published.bonus_points', 'versions.scale_lo', 'versions.scale_hi') }}
            as draw_score
    from tree_all
    inner join scenarios on scenarios.scenario_id = tree_all.scenario_id
    inner join {{ ref('stg_reference__catalogue_versions') }} as versions
        on versions.catalogue_version = scenarios.catalogue_version
    inner join published
        on published.period = scenarios.period and published.period_type = scenarios.period_type
       and published.department_id = tree_all.department_id
    where tree_all.level = 0
),

-- ranked as the published ranks: on the score rounded to the version's rank_decimals
-- in its round_mode, by its tie rule
scenario_ranks as (
    select
        period,
        period_type,
        draw,
        department_id,
        {{ rank_on_rounded('rounded_score', 'scenario_id', 'rank_ties') }} as draw_rank
    from (
        select *, {{ rank_score('draw_score', 'rank_decimals', 'round_mode') }} as rounded_score
        from draw_scores
    ) as rounded
)

select period, period_type, draw, department_id, draw_rank from scenario_ranks
