{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}",
          post_hook="{{ release_materialised_subquery('paired') }}") }}
-- 排名变动原因: the change of each department's composite against the previous period
-- ('previous': the month, quarter or year before) and the same period a year before
-- ('year_ago': 12 months, or 4 quarters, back), split into terms that add up to it
-- exactly, with no residual (docs/methodology.md §9a):
--   indicator          mean effective weight × Δscore
--   reweighting        缺项权重重分配: changes of the normalised weights (a child
--                      missing in one period, its weight shared out among the others)
--   geometric          几何平均项: what a geometric node's change is beyond the mean-
--                      weighted change of its children (log-mean split, exact)
--   bonus, penalty     加分, 减分 within their caps
--   clamp              得分封顶/保底: the composite kept in 0..100
--   catalogue_version  指标体系版本调整: the earlier period's base score re-aggregated
--                      through this period's catalogue tree, minus its own
-- Both periods are compared in this period's catalogue tree. Contributions are at
-- full precision (10 decimals); the data test checks that they add up to the
-- change of the published fct_rankings.composite_score.
{%- set keys = ['period', 'period_type', 'comparison', 'catalogue_version'] %}
{%- set side_keys = ['period', 'period_type', 'comparison', 'side', 'catalogue_version'] %}
{%- set pair_ctes %}
levels as (
    select * from {{ ref('fct_score_contributions') }}
),

rankings as (
    select period, period_type, department_id, composite_score, rank from {{ ref('fct_rankings') }}
),

catalogue as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

totals as (
    select
        period, period_type, department_id, catalogue_version,
        sum(case when term_type in ('indicator', 'geometric') then contribution else 0 end) as base_score,
        sum(case when term_type = 'bonus' then contribution else 0 end) as bonus,
        sum(case when term_type = 'penalty' then contribution else 0 end) as penalty,
        sum(case when term_type = 'clamp' then contribution else 0 end) as clamp
    from levels
    group by 1, 2, 3, 4
),

comparisons as (
    select 'previous' as comparison
    union all
    select 'year_ago' as comparison
),

-- Each department and period in the run's scope with each period it is compared with.
pairs as (
    select
        cur.period,
        cur.period_type,
        comparisons.comparison,
        cur.catalogue_version,
        cur.department_id,
        earlier.period as compared_period,
        earlier.catalogue_version as compared_version,
        earlier.base_score as base_before,
        earlier.bonus as bonus_before,
        earlier.penalty as penalty_before,
        earlier.clamp as clamp_before,
        cur.bonus as bonus_after,
        cur.penalty as penalty_after,
        cur.clamp as clamp_after
    from totals as cur
    cross join comparisons
    inner join totals as earlier
        on earlier.department_id = cur.department_id and earlier.period_type = cur.period_type
       and earlier.period = {{ add_months('cur.period', "case when comparisons.comparison = 'year_ago' then -12
                                                              else -" ~ months_in_period('cur.period_type') ~ " end") }}
    where {{ in_period_scope('cur.period', 'cur.period_type') }}
      -- a year's previous period is the year before: 'year_ago' would repeat it
      and not (cur.period_type = 'year' and comparisons.comparison = 'year_ago')
)
{%- endset %}

{#- Both sides' node scores and weights: read twenty times below (path_product_ctes joins it to
    itself at each level), so materialised once on Spark (materialised_subquery). -#}
{%- set paired_sql %}
with {{ pair_ctes }},

-- The indicator scores of both sides ('before': the earlier period), each placed in
-- this period's catalogue tree: an indicator this period's version lacks drops out.
leaves as (
    select
        pairs.period, pairs.period_type, pairs.comparison, 'after' as side, pairs.catalogue_version,
        pairs.department_id, levels.term as node_id, levels.score
    from pairs
    inner join levels
        on levels.period = pairs.period and levels.period_type = pairs.period_type
       and levels.department_id = pairs.department_id and levels.term_type = 'indicator'
    union all
    select
        pairs.period, pairs.period_type, pairs.comparison, 'before' as side, pairs.catalogue_version,
        pairs.department_id, levels.term as node_id, levels.score
    from pairs
    inner join levels
        on levels.period = pairs.compared_period and levels.period_type = pairs.period_type
       and levels.department_id = pairs.department_id and levels.term_type = 'indicator'
),

scopes as (
    select distinct period, period_type, comparison, side, catalogue_version from leaves
),

nodes as (
    select
        scopes.period, scopes.period_type, scopes.comparison, scopes.side, scopes.catalogue_version,
        catalogue.node_id, catalogue.parent_id, catalogue.level, catalogue.weight, catalogue.aggregation,
        catalogue.is_indicator, catalogue.round_digits, catalogue.round_mode, catalogue.min_children
    from scopes
    inner join catalogue on catalogue.catalogue_version = scopes.catalogue_version
),

{{ aggregated_tree_ctes('leaves', 'nodes', side_keys, prefix='tree') }},

-- Every node present on a side, with its weight normalised over the children present.
present as (
    select
        scored.period, scored.period_type, scored.comparison, scored.side, scored.catalogue_version,
        scored.department_id, scored.node_id, nodes.parent_id, nodes.level, nodes.aggregation,
        nodes.is_indicator, nodes.round_digits, scored.score,
        case when nodes.parent_id is null then 1.0
             else nodes.weight / sum(nodes.weight) over (
                 partition by scored.period, scored.period_type, scored.comparison, scored.side,
                              scored.catalogue_version, scored.department_id, nodes.parent_id)
        end as local_weight
    from (
        select {{ side_keys | join(', ') }}, department_id, node_id, score from tree_leaves
        union all
        select {{ side_keys | join(', ') }}, department_id, node_id, score from tree_all
    ) as scored
    inner join nodes
        on nodes.period = scored.period and nodes.period_type = scored.period_type
       and nodes.comparison = scored.comparison and nodes.side = scored.side
       and nodes.catalogue_version = scored.catalogue_version and nodes.node_id = scored.node_id
),

paired as (
    select
        period, period_type, comparison, catalogue_version, department_id, node_id, parent_id, level,
        aggregation, is_indicator, round_digits,
        max(case when side = 'before' then score end) as score_before,
        max(case when side = 'after' then score end) as score_after,
        max(case when side = 'before' then local_weight end) as weight_before,
        max(case when side = 'after' then local_weight end) as weight_after
    from present
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)

select * from paired
{%- endset %}

with {{ pair_ctes }},

paired as (
    select * from {{ materialised_subquery('paired', paired_sql) }} as both_sides
),

-- Nodes present on both sides (so are all their ancestors), with their mean weight.
on_both as (
    select *, (weight_before + weight_after) / 2 as mean_weight
    from paired
    where score_before is not null and score_after is not null
),

{{ path_product_ctes('on_both', keys, 'mean_weight', prefix='path') }},

-- At each node present on both sides, from its children: the weight changes
-- (arithmetic: on the children's scores; geometric: on their logs, 1 + 0.99·s), a
-- child on one side only counting whole, and the children's mean-weighted changes.
node_sums as (
    select
        parent.period, parent.period_type, parent.comparison, parent.catalogue_version, parent.department_id,
        parent.node_id, parent.aggregation, parent.round_digits, parent.path_product, parent.score_before,
        parent.score_after,
        sum(case when child.score_before is null then child.weight_after * child.score_after
                 when child.score_after is null then -child.weight_before * child.score_before
                 else (child.score_before + child.score_after) / 2 * (child.weight_after - child.weight_before)
            end) as score_reweighting,
        sum(case when child.score_before is null then child.weight_after * ln(1 + 0.99 * child.score_after)
                 when child.score_after is null then -child.weight_before * ln(1 + 0.99 * child.score_before)
                 else (ln(1 + 0.99 * child.score_before) + ln(1 + 0.99 * child.score_after)) / 2
                      * (child.weight_after - child.weight_before)
            end) as log_reweighting,
        sum(case when child.score_before is not null and child.score_after is not null
                 then (child.weight_before + child.weight_after) / 2
                      * (ln(1 + 0.99 * child.score_after) - ln(1 + 0.99 * child.score_before))
                 else 0 end) as log_change,
        sum(case when child.score_before is not null and child.score_after is not null
                 then (child.weight_before + child.weight_after) / 2 * (child.score_after - child.score_before)
                 else 0 end) as linear_change
    from path_all as parent
    inner join paired as child
        on child.parent_id = parent.node_id and child.department_id = parent.department_id
       and child.period = parent.period and child.period_type = parent.period_type
       and child.comparison = parent.comparison and child.catalogue_version = parent.catalogue_version
    where not parent.is_indicator
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
),

-- A geometric node's score S = exp(Σ wᵢ·ln(1 + 0.99·sᵢ)), so ΔS = L·Δln S exactly, L
-- the logarithmic mean of S before and after; Δln S is split into the weight changes
-- and the children's changes of logs, and the latter less the children's linear
-- changes is the geometric term.
node_terms as (
    select
        node_sums.*,
        case when node_sums.aggregation <> 'geometric' then 1.0
             when node_sums.score_after = node_sums.score_before then node_sums.score_after
             else (node_sums.score_after - node_sums.score_before)
                  / (ln(greatest(node_sums.score_after, 1.0)) - ln(greatest(node_sums.score_before, 1.0)))
        end as log_mean
    from node_sums
),

indicator_terms as (
    select
        paired.period, paired.period_type, paired.comparison, paired.catalogue_version, paired.department_id,
        paired.node_id as term,
        'indicator' as term_type,
        paired.score_before,
        paired.score_after,
        path_all.path_product as effective_weight,
        coalesce(path_all.path_product * (paired.score_after - paired.score_before), 0.0) as contribution
    from paired
    left join path_all
        on path_all.period = paired.period and path_all.period_type = paired.period_type
       and path_all.comparison = paired.comparison and path_all.catalogue_version = paired.catalogue_version
       and path_all.department_id = paired.department_id and path_all.node_id = paired.node_id
    where paired.is_indicator
),

tree_terms as (
    select
        period, period_type, comparison, catalogue_version, department_id,
        sum(path_product * case when aggregation = 'geometric' then log_mean * log_reweighting
                                else score_reweighting end) as reweighting,
        -- a node rounded at its level (catalogue `round`): its change beyond the weight
        -- changes and its children's mean-weighted changes (the rounding, and for a
        -- geometric node its curvature) is the geometric term, so the terms still add up
        sum(case when round_digits is not null
                 then path_product * (score_after - score_before - linear_change
                                      - case when aggregation = 'geometric' then log_mean * log_reweighting
                                             else score_reweighting end)
                 when aggregation = 'geometric'
                 then path_product * (log_mean * log_change - linear_change) else 0 end) as geometric
    from node_terms
    group by 1, 2, 3, 4, 5
),

roots as (
    select period, period_type, comparison, catalogue_version, department_id, score_before, score_after
    from paired
    where level = 0
),

named_terms as (
    select
        pairs.period, pairs.period_type, pairs.comparison, pairs.catalogue_version, pairs.department_id,
        pairs.compared_version,
        coalesce(tree_terms.reweighting, 0.0) as reweighting,
        coalesce(tree_terms.geometric, 0.0) as geometric,
        -- the earlier base score re-aggregated through this period's tree, less its own;
        -- when no indicator of it is in this tree, the whole change of the base score
        case when pairs.compared_version = pairs.catalogue_version then 0.0
             when roots.score_before is null then roots.score_after - pairs.base_before
             else roots.score_before - pairs.base_before end as catalogue_version_change,
        pairs.bonus_before, pairs.bonus_after, pairs.penalty_before, pairs.penalty_after,
        pairs.clamp_before, pairs.clamp_after
    from pairs
    left join roots
        on roots.period = pairs.period and roots.period_type = pairs.period_type
       and roots.comparison = pairs.comparison and roots.catalogue_version = pairs.catalogue_version
       and roots.department_id = pairs.department_id
    left join tree_terms
        on tree_terms.period = pairs.period and tree_terms.period_type = pairs.period_type
       and tree_terms.comparison = pairs.comparison and tree_terms.catalogue_version = pairs.catalogue_version
       and tree_terms.department_id = pairs.department_id
),

-- The named terms, one row each: a cross join, not a union of six selects, because
-- Spark inlines every reference to a CTE and named_terms holds the whole tree.
named_term_kinds as (
    select 'reweighting' as term
    union all select 'geometric'
    union all select 'catalogue_version'
    union all select 'bonus'
    union all select 'penalty'
    union all select 'clamp'
),

terms as (
    select
        period, period_type, comparison, catalogue_version, department_id, term, term_type,
        score_before, score_after, effective_weight, contribution
    from indicator_terms
    union all
    select
        named_terms.period, named_terms.period_type, named_terms.comparison, named_terms.catalogue_version,
        named_terms.department_id, kinds.term, kinds.term as term_type,
        case kinds.term when 'bonus' then named_terms.bonus_before when 'penalty' then named_terms.penalty_before
                             when 'clamp' then named_terms.clamp_before end,
        case kinds.term when 'bonus' then named_terms.bonus_after when 'penalty' then named_terms.penalty_after
                             when 'clamp' then named_terms.clamp_after end,
        null,
        case kinds.term
            when 'reweighting' then named_terms.reweighting
            when 'geometric' then named_terms.geometric
            when 'catalogue_version' then named_terms.catalogue_version_change
            when 'bonus' then named_terms.bonus_after - named_terms.bonus_before
            when 'penalty' then named_terms.penalty_after - named_terms.penalty_before
            when 'clamp' then named_terms.clamp_after - named_terms.clamp_before
        end
    from named_terms
    cross join named_term_kinds as kinds
)

select
    cast(terms.period as date) as period,
    cast(terms.period_type as string) as period_type,
    cast(terms.department_id as string) as department_id,
    cast(terms.comparison as string) as comparison,
    cast(pairs.compared_period as date) as compared_period,
    cast(terms.term as string) as term,
    cast(terms.term_type as string) as term_type,
    cast({{ engine_round('terms.score_before', 10) }} as double) as score_before,
    cast({{ engine_round('terms.score_after', 10) }} as double) as score_after,
    cast({{ engine_round('terms.score_after - terms.score_before', 10) }} as double) as score_change,
    cast({{ engine_round('terms.effective_weight', 10) }} as double) as effective_weight,
    cast({{ engine_round('terms.contribution', 10) }} as double) as contribution,
    cast(earlier.composite_score as double) as composite_before,
    cast(cur.composite_score as double) as composite_after,
    cast(earlier.rank as integer) as rank_before,
    cast(cur.rank as integer) as rank_after,
    cast(earlier.rank - cur.rank as integer) as rank_change,
    cast(terms.catalogue_version as string) as catalogue_version,
    cast(pairs.compared_version as string) as compared_catalogue_version
from terms
inner join pairs
    on pairs.period = terms.period and pairs.period_type = terms.period_type
   and pairs.comparison = terms.comparison and pairs.catalogue_version = terms.catalogue_version
   and pairs.department_id = terms.department_id
inner join rankings as cur
    on cur.period = terms.period and cur.period_type = terms.period_type and cur.department_id = terms.department_id
inner join rankings as earlier
    on earlier.period = pairs.compared_period and earlier.period_type = terms.period_type
   and earlier.department_id = terms.department_id
