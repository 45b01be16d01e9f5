-- Each case with its working-day deadline, whether it met it, and whether a bad
-- review was rectified within 15 working days. Limited to the cases a run needs.
with cases as (
    select * from {{ ref('stg_lake__service_transactions') }}
    where received_month <= {{ period_end() }}
      and (completed_at is null or completed_month >= {{ lookback_start() }})
),

calendar as (
    select * from {{ ref('int_calendar__working_days') }}
),

timed as (
    select
        cases.*,
        {{ hours_between('cases.received_at', 'cases.completed_at') }} as processing_hours,
        received.working_day_number + cases.time_limit_days as due_working_day,
        completed.working_day_number as completed_working_day,
        rectified.working_day_number - completed.working_day_number as rectification_working_days
    from cases
    inner join calendar as received on received.calendar_date = cast(cases.received_at as date)
    left join calendar as completed on completed.calendar_date = cast(cases.completed_at as date)
    left join calendar as rectified on rectified.calendar_date = cast(cases.rectified_at as date)
),

final as (
    select
        *,
        completed_working_day <= due_working_day as completed_on_time,
        rating <= 2 and not coalesce(appeal_upheld, false) as counts_as_bad_review,
        rating is not null and not (rating <= 2 and coalesce(appeal_upheld, false)) as counts_as_rated
    from timed
)

select * from final
