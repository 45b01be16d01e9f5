-- year_scored_with: the department whose year score counts this one's rows in the year
-- it merged (annual.merged_departments: successor); null when it is scored on its own
-- months in office.
select
    cast(departments.department_id as string) as department_id,
    cast(departments.department_name as string) as department_name,
    cast(departments.peer_group as string) as peer_group,
    cast(departments.parent_id as string) as parent_id,
    cast(departments.valid_from as date) as valid_from,
    cast(departments.valid_to as date) as valid_to,
    cast(departments.merged_into as string) as merged_into,
    cast(successors.scored_as as string) as year_scored_with
from {{ ref('stg_reference__departments') }} as departments
left join {{ ref('int_departments__year_successors') }} as successors
    on successors.department_id = departments.department_id
