{#- Fails for every group of rows (group_by) whose `column_name` values do not add up
    to `total` within `tolerance`. `total` is an expression over the model's rows
    (the same on every row of a group), or, with `relation`, over that relation's one
    row of the group (joined on the group_by columns). Only the periods the build
    wrote are checked (in_period_scope: every period when no window is set). -#}
{% test terms_add_up(model, column_name, group_by, total, tolerance, relation=none) %}
with summed as (
    select
        {% for column in group_by %}terms.{{ column }}, {% endfor %}
        sum(terms.{{ column_name }}) as summed,
        {% if relation is none -%}
        max({{ total }}) as total
        {%- else -%}
        max(other.{{ total }}) as total
        {%- endif %}
    from {{ model }} as terms
    {% if relation is not none -%}
    left join {{ relation }} as other
        on {% for column in group_by %}other.{{ column }} = terms.{{ column }}{{ " and " if not loop.last }}{% endfor %}
    {%- endif %}
    where {{ in_period_scope('terms.period', 'terms.period_type') }}
    group by {% for column in group_by %}terms.{{ column }}{{ ", " if not loop.last }}{% endfor %}
)

select *
from summed
where total is null or abs(summed - total) > {{ tolerance }}
{% endtest %}
