{{ config(materialized='table') }}
-- Indicators from service transactions, per department and month.
-- Time, on-time and review indicators use the completion month; volume, channel
-- and materials the receipt month. A case still open at a month's end with its
-- limit run out counts as not on time in that month (and in every later month it
-- is still open at the end of), as PRODUCT.md defines.
with cases as (
    select * from {{ ref('int_transactions__timed') }}
),

calendar as (
    select * from {{ ref('int_calendar__working_days') }}
),

months as (
    select distinct received_month as period from cases where {{ in_lookback_scope('received_month') }}
),

completed as (
    select
        department_id,
        completed_month as period,
        count(*) as n_completed,
        sum(case when completed_on_time then 1 else 0 end) as n_on_time,
        {{ median('processing_hours') }} as median_hours,
        sum(case when counts_as_rated then 1 else 0 end) as n_rated,
        sum(case when counts_as_rated and rating >= 3 then 1 else 0 end) as n_good,
        sum(case when counts_as_bad_review then 1 else 0 end) as n_bad,
        sum(case when counts_as_bad_review and rectified and rectification_working_days <= 15 then 1 else 0 end)
            as n_rectified
    from cases
    where completed_at is not null and {{ in_lookback_scope('completed_month') }}
    group by 1, 2
),

-- The working-day number of each month's last day: a limit that ran out on or
-- before it has run out by the month's end.
month_ends as (
    select months.period, max(calendar.working_day_number) as last_working_day
    from months
    inner join calendar
        on calendar.calendar_date >= months.period
       and calendar.calendar_date < {{ add_months('months.period', 1) }}
    group by 1
),

overdue_open as (
    select cases.department_id, month_ends.period, count(*) as n_overdue_open
    from cases
    inner join month_ends
        on cases.due_working_day <= month_ends.last_working_day
       and cases.received_at < {{ add_months('month_ends.period', 1) }}
    where cases.completed_at is null
       or cases.completed_at >= {{ add_months('month_ends.period', 1) }}
    group by 1, 2
),

on_time as (
    select
        coalesce(completed.department_id, overdue_open.department_id) as department_id,
        coalesce(completed.period, overdue_open.period) as period,
        coalesce(completed.n_on_time, 0) as n_on_time,
        coalesce(completed.n_completed, 0) + coalesce(overdue_open.n_overdue_open, 0) as n_judged
    from completed
    full outer join overdue_open
        on overdue_open.department_id = completed.department_id and overdue_open.period = completed.period
),

received as (
    select
        department_id,
        received_month as period,
        count(*) as n_received,
        sum(case when channel = 'online' then 1 else 0 end) as n_online,
        sum(materials_required) as materials_required,
        sum(materials_submitted) as materials_submitted
    from cases
    where {{ in_lookback_scope('received_month') }}
    group by 1, 2
),

long as (
    select period, department_id, 'on_time_rate' as indicator_id,
           100.0 * n_on_time / n_judged as raw_value,
           n_judged as n_obs
    from on_time
    union all
    select period, department_id, 'median_processing_hours', median_hours, n_completed from completed
    union all
    select period, department_id, 'good_review_rate', 100.0 * n_good / nullif(n_rated, 0), n_rated from completed
    union all
    select period, department_id, 'rectification_rate', 100.0 * n_rectified / nullif(n_bad, 0), n_bad from completed
    union all
    select period, department_id, 'online_rate', 100.0 * n_online / n_received, n_received from received
    union all
    select period, department_id, 'material_reduction_rate',
           100.0 * (1 - 1.0 * materials_submitted / nullif(materials_required, 0)), n_received
    from received
    union all
    select period, department_id, 'transactions_received', cast(n_received as double), n_received from received
)

select * from long where raw_value is not null
