{{ config(materialized='table') }}
-- The scenarios of the rank-robustness Monte Carlo: one per period in scope and draw
-- of its catalogue version's design, with the draw's normalisation and aggregation
-- choices, and the batch int_rank_robustness__draws builds it in. A batch holds whole
-- scenarios (a draw's ranks need all its departments), about monte_carlo_batch_rows
-- indicator scores (reference/warehouse.yaml), so its memory stays bounded.
-- A year built up from its quarters has no draws: its composite is not the tree's
-- (methodology §9b), so the tree's perturbations would not describe it.
with scopes as (
    select treated.period, treated.period_type, treated.catalogue_version, count(*) as scores
    from {{ ref('int_indicator_treated') }} as treated
    inner join {{ ref('stg_reference__catalogue_versions') }} as versions
        on versions.catalogue_version = treated.catalogue_version
    where treated.treated_value is not null and {{ in_period_scope('treated.period', 'treated.period_type') }}
      and not (treated.period_type = 'year' and versions.annual_method = 'built_up')
    group by 1, 2, 3
),

choices as (
    select distinct catalogue_version, draw, normalisation, aggregation
    from {{ ref('stg_reference__robustness_draws') }}
),

scenarios as (
    select
        row_number() over (order by scopes.period, scopes.period_type, choices.draw) as scenario_id,
        scopes.period,
        scopes.period_type,
        scopes.catalogue_version,
        scopes.scores,
        choices.draw,
        choices.normalisation,
        choices.aggregation,
        dense_rank() over (order by scopes.period, scopes.period_type, choices.normalisation) as normalisation_id
    from scopes
    inner join choices on choices.catalogue_version = scopes.catalogue_version
)

select
    scenario_id,
    period,
    period_type,
    catalogue_version,
    draw,
    normalisation,
    aggregation,
    normalisation_id,
    1 + cast(floor(
        (sum(scores) over (order by scenario_id) - scores) / {{ build_setting('monte_carlo_batch_rows', 2000000) }}
    ) as integer) as batch
from scenarios
