{{ config(materialized='table') }}
-- Scores of every aggregate node of the catalogue tree, computed level by level
-- from the deepest up to the root ('composite', level 0). At each node the
-- children present are combined with their weights (a missing child's weight is
-- shared out among the others: re-weighting within the node), arithmetically or
-- geometrically as the node says. Geometric aggregation first rescales its
-- inputs from [0, 100] to [1, 100].
{%- set max_depth = 8 %}

with nodes as (
    select * from {{ ref('stg_reference__catalogue_nodes') }}
),

indicator_scores as (
    select s.period, s.department_id, s.catalogue_version, n.node_id, n.parent_id, n.level, n.weight, s.score
    from {{ ref('int_scores__normalised') }} as s
    inner join nodes as n
        on n.node_id = s.indicator_id and n.catalogue_version = s.catalogue_version
),

{% for level in range(max_depth - 1, -1, -1) %}
level_{{ level }} as (
    select
        children.period,
        children.department_id,
        children.catalogue_version,
        parent.node_id,
        parent.parent_id,
        parent.level,
        parent.weight,
        cast(round(
            case when parent.aggregation = 'geometric'
                 then exp(sum(children.weight * ln(1 + 0.99 * children.score)) / sum(children.weight))
                 else sum(children.weight * children.score) / sum(children.weight) end,
            10) as double) as score
    from (
        select * from indicator_scores where level = {{ level + 1 }}
        {%- if level + 1 < max_depth %}
        union all
        select * from level_{{ level + 1 }}
        {%- endif %}
    ) as children
    inner join nodes as parent
        on parent.node_id = children.parent_id
       and parent.catalogue_version = children.catalogue_version
       and parent.level = {{ level }}
    group by 1, 2, 3, 4, 5, 6, 7, parent.aggregation
){{ "," if not loop.last }}
{% endfor %}

{% for level in range(max_depth) %}
select period, department_id, catalogue_version, node_id, parent_id, level, score from level_{{ level }}
{{ "union all" if not loop.last }}
{% endfor %}
