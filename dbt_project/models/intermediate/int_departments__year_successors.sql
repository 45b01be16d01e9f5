-- The departments a year scores with their successor (annual.merged_departments:
-- successor, in the catalogue version in force on the year's first day): one row per
-- department merged during the year, with the department its year's rows count for
-- (reference.py DepartmentRegistry.successors_in_year follows a chain of mergers).
-- Under months_in_office (the default) this is empty.
with departments as (
    select * from {{ ref('stg_reference__departments') }}
    where successor_in_year is not null
),

versions as (
    select * from {{ ref('stg_reference__catalogue_versions') }}
)

select
    departments.department_id,
    {{ month_of(dbt.date_trunc('year', 'departments.valid_to')) }} as period,
    departments.successor_in_year as scored_as
from departments
inner join versions
    on {{ month_of(dbt.date_trunc('year', 'departments.valid_to')) }}
       between versions.effective_from and versions.effective_to
where versions.merged_departments = 'successor'
