{#- The scoring definitions, written once. The published scores
    (int_scores__normalised, int_scores__aggregated, int_rankings) and every draw
    of the Monte Carlo (int_rank_robustness) call these same macros; only the keys
    differ: (period, period_type) for the published run, (draw, period, period_type)
    for the draws. So the robustness analysis cannot drift from what is published.
    Formulas: PRODUCT.md, "Normalisation", and docs/methodology.md. -#}

{#- Scores on the version's scale (0-100 by default), higher is better, for rows of
    `relation` with columns <keys>, department_id, indicator_id, value, direction,
    normalisation, target, goalpost_lo, goalpost_hi, scale_lo, scale_hi, round_digits,
    round_mode (each of the last five NULL: its default, as everywhere in these macros). The reference set is every row with a value for the same keys and
    indicator. Each method computes a 0-100 score, mapped to the scale (scale_lo +
    (scale_hi - scale_lo) / 100 · score: exactly the score on 0-100); `identity` takes the
    value as it is (already on the scale). Then rounded as the version says
    (round_score: 10 decimals unless `round` is set). -#}
{% macro normalised_scores(relation, keys) -%}
{%- set scope = keys | join(', ') -%}
select
    {{ scope }},
    department_id,
    indicator_id,
    {{ round_score('unrounded', 'round_digits', 'round_mode') }} as score
from (
select
    {{ scope }},
    department_id,
    indicator_id,
    round_digits,
    round_mode,
    case when normalisation = 'identity' then value
         else coalesce(scale_lo, 0.0) + (coalesce(scale_hi, 100.0) - coalesce(scale_lo, 0.0)) / 100.0 * (
        case normalisation
            when 'min_max' then
                case when set_max = set_min then 100.0
                     when direction = 'higher' then 100.0 * (value - set_min) / (set_max - set_min)
                     else 100.0 * (set_max - value) / (set_max - set_min) end
            when 'z_score' then
                least(greatest(50.0 + 10.0 * (case when set_n < 2 or set_sd = 0 then 0.0
                     else (case when direction = 'higher' then 1 else -1 end) * (value - set_mean) / set_sd end),
                     0.0), 100.0)
            when 'distance_to_target' then
                case when direction = 'higher' then 100.0 * least(greatest(value, 0) / target, 1.0)
                     when value <= 0 then 100.0
                     else 100.0 * least(target / value, 1.0) end
            when 'goalposts' then
                100.0 * least(greatest(
                    case when direction = 'higher' then (value - goalpost_lo) / (goalpost_hi - goalpost_lo)
                         else (goalpost_hi - value) / (goalpost_hi - goalpost_lo) end, 0.0), 1.0)
            when 'percentile_rank' then
                case when set_n = 1 then 100.0 else 100.0 * (avg_rank - 1) / (set_n - 1) end
        end) end as unrounded
from (
    select
        r.*,
        min(r.value) over reference_set as set_min,
        max(r.value) over reference_set as set_max,
        {{ engine_round('avg(r.value) over reference_set', 10) }} as set_mean,
        {{ engine_round('stddev_samp(r.value) over reference_set', 10) }} as set_sd,
        count(*) over reference_set as set_n,
        -- average rank for ties, counted from worst (1) to best
        rank() over (
            partition by {{ scope }}, r.indicator_id
            order by case when r.direction = 'lower' then -r.value else r.value end
        ) + (count(*) over (partition by {{ scope }}, r.indicator_id, r.value) - 1) / 2.0 as avg_rank
    from {{ relation }} as r
    window reference_set as (partition by {{ scope }}, r.indicator_id)
) as with_reference_set
) as unrounded_scores
{%- endmacro %}


{#- CTE definitions (to place inside a WITH) that aggregate the tree level by level,
    from the deepest up to the root (level 0). `leaves`: <keys>, department_id,
    node_id, score. `nodes`: <keys>, node_id, parent_id, level, weight, aggregation,
    round_digits, round_mode, min_children.
    At each node the children present are combined with their weights, a missing
    child's weight shared out among the others (re-weighting within the node), if at
    least min_children are present (else the node has no score, and is missing to its
    parent); the score is rounded as the node says (round_score: 10 decimals unless
    `round` is set), before the level above uses it;
    geometric aggregation rescales its inputs from [0, 100] to [1, 100] first.
    The last CTE, `<prefix>_all`, holds <keys>, department_id, node_id, level, score. -#}
{% macro aggregated_tree_ctes(leaves, nodes, keys, prefix='tree', max_depth=8) -%}
{%- set scope = keys | join(', ') -%}
{%- set child_keys = [] -%}{%- for k in keys -%}{%- do child_keys.append('children.' ~ k) -%}{%- endfor -%}
{{ prefix }}_leaves as (
    select l.{{ keys | join(', l.') }}, l.department_id, n.node_id, n.parent_id, n.level, n.weight, l.score
    from {{ leaves }} as l
    inner join {{ nodes }} as n
        on n.node_id = l.node_id {% for k in keys %} and n.{{ k }} = l.{{ k }}{% endfor %}
),
{% for level in range(max_depth - 1, -1, -1) %}
{{ prefix }}_{{ level }} as (
    select {{ scope }}, department_id, node_id, parent_id, level, weight,
           {{ round_score('unrounded', 'round_digits', 'round_mode') }} as score
    from (
    select
        {{ child_keys | join(', ') }},
        children.department_id,
        parent.node_id,
        parent.parent_id,
        parent.level,
        parent.weight,
        parent.round_digits,
        parent.round_mode,
        case when parent.aggregation = 'geometric'
             then exp(sum(children.weight * ln(1 + 0.99 * children.score)) / sum(children.weight))
             else sum(children.weight * children.score) / sum(children.weight) end as unrounded
    from (
        select * from {{ prefix }}_leaves where level = {{ level + 1 }}
        {%- if level + 1 < max_depth %}
        union all
        select * from {{ prefix }}_{{ level + 1 }}
        {%- endif %}
    ) as children
    inner join {{ nodes }} as parent
        on parent.node_id = children.parent_id
       and parent.level = {{ level }}
       {%- for k in keys %} and parent.{{ k }} = children.{{ k }}{% endfor %}
    group by {{ child_keys | join(', ') }}, children.department_id, parent.node_id, parent.parent_id,
             parent.level, parent.weight, parent.aggregation, parent.round_digits, parent.round_mode,
             parent.min_children
    having count(*) >= coalesce(parent.min_children, 1)
    ) as unrounded_level
),
{% endfor %}
{{ prefix }}_all as (
    {% for level in range(max_depth) %}
    select {{ scope }}, department_id, node_id, level, score from {{ prefix }}_{{ level }}
    {{ "union all" if not loop.last }}
    {% endfor %}
)
{%- endmacro %}


{#- A CTE definition (to place inside a WITH) that multiplies `factor` down the tree:
    each row's `path_product` is the product of `factor` over the row and all its
    ancestors up to the root (level 0), multiplied from the root down. `relation`:
    <keys>, department_id, node_id, parent_id, level, <factor>. A row whose parent is
    not in `relation` is left out, and so are its descendants. The CTE, `<prefix>_all`,
    holds the relation's columns and path_product. Used for effective weights (the
    product of the normalised weights along the catalogue path, int_score_contributions)
    and for the mean weights of a change (fct_score_changes).
    Each row is joined to its ancestors in one query (`relation` read max_depth + 1
    times), not level by level: Spark inlines every reference to a CTE, and a union of
    per-level CTEs, each reading the one above, would read `relation` (max_depth + 1)
    (max_depth + 2) / 2 times. -#}
{% macro path_product_ctes(relation, keys, factor, prefix='path', max_depth=8) -%}
{{ prefix }}_all as (
    select
        node.*,
        case node.level
            when 0 then cast(node.{{ factor }} as double)
            {%- for level in range(1, max_depth + 1) %}
            when {{ level }} then cast({{ prefix }}_up_{{ level }}.{{ factor }} as double)
                {%- for up in range(level - 1, 0, -1) %} * {{ prefix }}_up_{{ up }}.{{ factor }}{% endfor %} * node.{{ factor }}
            {%- endfor %}
        end as path_product
    from {{ relation }} as node
    {%- for up in range(1, max_depth + 1) %}
    {%- set below = 'node' if up == 1 else prefix ~ '_up_' ~ (up - 1) %}
    left join {{ relation }} as {{ prefix }}_up_{{ up }}
        on {{ prefix }}_up_{{ up }}.node_id = {{ below }}.parent_id
       and {{ prefix }}_up_{{ up }}.department_id = {{ below }}.department_id
       and {{ prefix }}_up_{{ up }}.level = {{ below }}.level - 1
       {%- for k in keys %} and {{ prefix }}_up_{{ up }}.{{ k }} = {{ below }}.{{ k }}{% endfor %}
    {%- endfor %}
    where case node.level
              when 0 then true
              {%- for level in range(1, max_depth + 1) %}
              when {{ level }} then {{ prefix }}_up_{{ level }}.level = 0
              {%- endfor %}
              else false
          end
)
{%- endmacro %}


{#- The composite after bonus and penalty points (already capped), kept in the
    version's scale (0-100 by default). Ranks and grades are taken on this
    full-precision score rounded to rank_decimals (2 by default, as COINr does); the
    marts store it at stored_decimals (4). -#}
{% macro adjusted_composite(base_score, bonus_points, scale_lo='0', scale_hi='100') -%}
    cast({{ engine_round('least(greatest(' ~ base_score ~ ' + ' ~ bonus_points ~ ', coalesce(' ~ scale_lo
                         ~ ', 0)), coalesce(' ~ scale_hi ~ ', 100))', 10) }} as double)
{%- endmacro %}

{#- The score ranks and grades are taken on: rounded to `decimals` in `mode` (the
    version's rank_decimals and round_mode; by default round(score, 2)). -#}
{% macro rank_score(score, decimals='2', mode="'engine'") -%}
    {{ round_to(score, 'coalesce(' ~ decimals ~ ', 2)', mode) }}
{%- endmacro %}

{#- Rank on the score rounded to `decimals` in `mode`, highest first. Ties (`ties`, the
    version's rule): 'min' (default), 'dense', or 'average' (fractional: the mean of
    the places the tied share), as a double then. -#}
{% macro rank_on_score(score, partition_by, decimals='2', mode="'engine'", ties="'min'") -%}
    {{ rank_on_rounded(rank_score(score, decimals, mode), partition_by, ties) }}
{%- endmacro %}

{#- The same on a score already rounded for ranking (rank_score), for a query that
    rounds it once in a column. -#}
{% macro rank_on_rounded(rounded, partition_by, ties="'min'") -%}
{%- if ties == "'min'" %}
    rank() over (partition by {{ partition_by }} order by {{ rounded }} desc)
{%- else %}
    (case {{ ties }}
        when 'dense' then dense_rank() over (partition by {{ partition_by }} order by {{ rounded }} desc)
        when 'average' then rank() over (partition by {{ partition_by }} order by {{ rounded }} desc)
            + (count(*) over (partition by {{ partition_by }}, {{ rounded }}) - 1) / 2.0
        else rank() over (partition by {{ partition_by }} order by {{ rounded }} desc) end)
{%- endif %}
{%- endmacro %}


{#- Sample-adjusted skewness and excess kurtosis (the estimators of Excel's SKEW and
    KURT, e1071 type 2) from n and the central sums s2 = Σ(x-x̄)², s3, s4. -#}
{% macro sample_skewness(n, s2, s3) -%}
    (case when {{ n }} > 2 and {{ s2 }} > 0
          then {{ n }} / (({{ n }} - 1e0) * ({{ n }} - 2e0)) * {{ s3 }} / power({{ s2 }} / ({{ n }} - 1e0), 1.5e0) end)
{%- endmacro %}
{% macro sample_kurtosis(n, s2, s4) -%}
    (case when {{ n }} > 3 and {{ s2 }} > 0
          then {{ n }} * ({{ n }} + 1e0) / (({{ n }} - 1e0) * ({{ n }} - 2e0) * ({{ n }} - 3e0))
               * {{ s4 }} / power({{ s2 }} / ({{ n }} - 1e0), 2)
               - 3e0 * power({{ n }} - 1e0, 2) / (({{ n }} - 2e0) * ({{ n }} - 3e0)) end)
{%- endmacro %}


{#- Inside an aggregate over rows with `position` (1..n, by value) and `n`: the
    percentile at `fraction` interpolated between neighbouring values, as
    percentile_cont does: position 1 + (n - 1)·fraction. -#}
{% macro interpolated_percentile(fraction) -%}
{%- set at = '(1 + (n - 1) * ' ~ fraction ~ ')' -%}
    (max(case when position = floor({{ at }}) then value end)
     + ({{ at }} - floor({{ at }}))
       * (max(case when position = ceil({{ at }}) then value end)
          - max(case when position = floor({{ at }}) then value end)))
{%- endmacro %}
