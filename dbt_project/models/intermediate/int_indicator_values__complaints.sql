-- Complaint rate: substantiated hotline complaints per 10,000 transactions
-- received, per month and per quarter.
with complaints as (
    select
        {{ scored_department('c.department_id') }} as department_id,
        {{ grain_period('c.received_month', 'grains.period_type') }} as period,
        grains.period_type,
        count(*) as n_substantiated
    from {{ ref('stg_lake__hotline_complaints') }} as c
    cross join {{ period_grains() }} as grains
    {{ join_year_successor('c.department_id', 'c.received_month') }}
    where c.substantiated and {{ in_grain_scope('c.received_month', 'grains.period_type') }}
    group by 1, 2, 3
),

volume as (
    select department_id, period, period_type, n_obs as n_received
    from {{ ref('int_indicator_values__transactions') }}
    where indicator_id = 'transactions_received'
)

select
    volume.period,
    volume.period_type,
    volume.department_id,
    'complaint_rate' as indicator_id,
    10000e0 * coalesce(complaints.n_substantiated, 0) / volume.n_received as raw_value,
    volume.n_received as n_obs
from volume
left join complaints using (department_id, period, period_type)
where volume.n_received > 0
