{{ config(materialized='table') }}
-- Scores of every aggregate node of the catalogue tree, level by level from the
-- deepest up to the root ('composite', level 0), by each node's weights and
-- aggregation (macro aggregated_tree_ctes, shared with the Monte Carlo).
with scores as (
    select period, period_type, catalogue_version, department_id, indicator_id as node_id, score
    from {{ ref('int_scores__normalised') }}
),

scopes as (
    select distinct period, period_type, catalogue_version from scores
),

nodes as (
    select scopes.period, scopes.period_type, n.*
    from scopes
    inner join {{ ref('stg_reference__catalogue_nodes') }} as n on n.catalogue_version = scopes.catalogue_version
),

{{ aggregated_tree_ctes('scores', 'nodes', ['period', 'period_type', 'catalogue_version'], prefix='tree') }}

select
    tree_all.period,
    tree_all.period_type,
    tree_all.catalogue_version,
    tree_all.department_id,
    tree_all.node_id,
    nodes.parent_id,
    tree_all.level,
    tree_all.score
from tree_all
inner join nodes
    on nodes.period = tree_all.period and nodes.period_type = tree_all.period_type
   and nodes.catalogue_version = tree_all.catalogue_version and nodes.node_id = tree_all.node_id
