-- The cases each period's on-time rate judges (PRODUCT.md): the cases completed
-- in the period that had a deadline, and the cases still open at the period's end
-- whose limit had run out by then (not on time, in every period they stay open
-- at the end of). One row per period and case; int_indicator_values__transactions
-- counts these rows, and marts.fct_indicator_evidence lists them.
with cases as (
    select * from {{ ref('int_transactions__timed') }}
),

calendar as (
    select * from {{ ref('int_calendar__working_days') }}
),

grains as {{ period_grains() }},

completed as (
    select
        cases.*,
        {{ grain_period('cases.completed_month', 'grains.period_type') }} as period,
        grains.period_type,
        coalesce(cases.completed_on_time, false) as completed_on_time_in_period
    from cases
    cross join grains
    where cases.completed_at is not null and cases.has_deadline
      and {{ in_grain_scope('cases.completed_month', 'grains.period_type') }}
),

periods as (
    select distinct
        {{ grain_period('cases.received_month', 'grains.period_type') }} as period,
        grains.period_type
    from cases
    cross join grains
    where {{ in_grain_scope('cases.received_month', 'grains.period_type') }}
),

-- The working-day number of each period's last day: a limit that ran out on or
-- before it has run out by the period's end.
period_ends as (
    select periods.period, periods.period_type, max(calendar.working_day_number) as last_working_day
    from periods
    inner join calendar
        on calendar.calendar_date >= periods.period
       and calendar.calendar_date < {{ period_after('periods.period', 'periods.period_type') }}
    group by 1, 2
),

overdue_open as (
    select
        cases.*,
        period_ends.period,
        period_ends.period_type,
        false as completed_on_time_in_period
    from cases
    inner join period_ends
        on (case when cases.due_at is not null
                 then cases.due_at < {{ period_after('period_ends.period', 'period_ends.period_type') }}
                 else period_ends.last_working_day >= cases.due_working_day end)
       and cases.received_at < {{ period_after('period_ends.period', 'period_ends.period_type') }}
    where (cases.completed_at is null
       or cases.completed_at >= {{ period_after('period_ends.period', 'period_ends.period_type') }})
      and cases.has_deadline
)

select *, true as is_judged from completed
union all
select *, true as is_judged from overdue_open
