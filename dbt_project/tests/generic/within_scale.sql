{#- Fails for every row whose score lies outside its catalogue version's scale
    (`scale`, [0, 100] by default; NULLs pass). An `identity` indicator delivered off
    the scale fails here: its value is scored as it is, not clamped. -#}
{% test within_scale(model, column_name) %}
select m.catalogue_version, m.{{ column_name }} as failing_value, v.scale_lo, v.scale_hi
from {{ model }} as m
inner join {{ ref('stg_reference__catalogue_versions') }} as v on v.catalogue_version = m.catalogue_version
where m.{{ column_name }} < v.scale_lo or m.{{ column_name }} > v.scale_hi
{% endtest %}
