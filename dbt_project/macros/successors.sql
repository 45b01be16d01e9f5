{#- The department a source row counts for at a grain. A year whose catalogue version
    sets annual.merged_departments: successor counts the rows of a department merged
    during it with its successor's (int_departments__year_successors); every other grain,
    and a year under months_in_office, with the row's own department. After a cross join
    with the grains, join_year_successor adds the join (alias `successor`), and
    scored_department is the department to select and group by. -#}
{% macro join_year_successor(department, month, period_type='grains.period_type') -%}
left join {{ ref('int_departments__year_successors') }} as successor
    on {{ period_type }} = 'year'
   and successor.department_id = {{ department }}
   and successor.period = {{ month_of(dbt.date_trunc('year', month)) }}
{%- endmacro %}

{% macro scored_department(department) -%}
    coalesce(successor.scored_as, {{ department }})
{%- endmacro %}

{#- The 加减分 and 一票否决 items (stg_lake__adjustments) with the department each counts
    for (counted_for): its own department; and, only at a year (only_in_year) that counts
    its department with a successor, that successor too. -#}
{% macro adjustment_items() -%}
    select items.*, items.department_id as counted_for, false as only_in_year
    from {{ ref('stg_lake__adjustments') }} as items
    union all
    select items.*, successor.scored_as as counted_for, true as only_in_year
    from {{ ref('stg_lake__adjustments') }} as items
    inner join {{ ref('int_departments__year_successors') }} as successor
        on successor.department_id = items.department_id
       and successor.period = {{ month_of(dbt.date_trunc('year', 'items.adjustment_month')) }}
{%- endmacro %}
