-- The submission register: for each period, source, department and file, how
-- many rows it delivered, when, against which deadline, and whether those rows
-- count (current) or were replaced by a resubmission (superseded) or taken out
-- of the inbox (withdrawn), per month of the rows' own dates (a resubmission
-- replaces a department's month). Lateness is judged on a department's first delivery.
with register as (
    select * from {{ ref('stg_ingest__submissions') }}
),

first_delivery as (
    select source, period, department_id, slice, min(submitted_at) as first_submitted_at
    from register
    group by 1, 2, 3, 4
)

select
    cast(register.period as date) as period,
    cast(register.source as string) as source,
    cast(register.department_id as string) as department_id,
    cast(register.slice as string) as slice,
    cast(register.month as date) as month,
    cast(register.file_name as string) as file_name,
    cast(register.file_hash as string) as file_hash,
    cast(register.submitted_at as timestamp) as submitted_at,
    cast(register.deadline as date) as deadline,
    cast(register.rows as bigint) as rows,
    cast(register.status as string) as status,
    cast(register.superseded_by_file as string) as superseded_by_file,
    cast(cast(first_delivery.first_submitted_at as date) > register.deadline as boolean) as is_late,
    cast(greatest(
        {{ dbt.datediff('register.deadline', 'cast(first_delivery.first_submitted_at as date)', 'day') }}, 0
    ) as integer) as days_late
from register
inner join first_delivery using (source, period, department_id, slice)
