-- Complaint rate: substantiated hotline complaints per 10,000 transactions received.
with complaints as (
    select department_id, received_month as period, count(*) as n_substantiated
    from {{ ref('stg_lake__hotline_complaints') }}
    where substantiated and {{ in_lookback_scope('received_month') }}
    group by 1, 2
),

volume as (
    select department_id, period, n_obs as n_received
    from {{ ref('int_indicator_values__transactions') }}
    where indicator_id = 'transactions_received'
)

select
    volume.period,
    volume.department_id,
    'complaint_rate' as indicator_id,
    10000.0 * coalesce(complaints.n_substantiated, 0) / volume.n_received as raw_value,
    volume.n_received as n_obs
from volume
left join complaints using (department_id, period)
where volume.n_received > 0
