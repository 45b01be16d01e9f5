-- Each case with its working-day deadline, whether it met it, and whether a bad
-- review was rectified within 15 working days. Limited to the cases a run needs.
-- A duplicate, transferred or not_a_case request is not a case of the department:
-- it is left out of every indicator (the rows stay in the lake and the marts' counts).
-- The deadline is the due time when the extract gives one, else the statutory
-- limit in working days; a case with neither is not judged on time.
with cases as (
    select * from {{ ref('stg_lake__service_transactions') }}
    where status not in ('duplicate', 'transferred', 'not_a_case')
      and received_month <= {{ period_end() }}
      and (completed_at is null or completed_month >= {{ lookback_start() }})
),

calendar as (
    select * from {{ ref('int_calendar__working_days') }}
),

-- A bad review whose case the office upheld on appeal (govperf appeal) counts as one
-- upheld in the 好差评 system's own appeal: it is not a bad review, and not rated.
upheld_cases as (
    select distinct department_id, case_id
    from {{ ref('stg_reference__appeals') }}
    where status = 'upheld' and case_id is not null
),

timed as (
    select
        cases.*,
        {{ hours_between('cases.received_at', 'cases.completed_at') }} as processing_hours,
        -- calendar days between the dates, as 311 systems report "days open"
        {{ dbt.datediff('cast(cases.received_at as date)', 'cast(cases.completed_at as date)', 'day') }}
            as days_to_close,
        received.working_day_number + cases.time_limit_days as due_working_day,
        completed.working_day_number as completed_working_day,
        rectified.working_day_number - completed.working_day_number as rectification_working_days,
        upheld_cases.case_id is not null as upheld_on_appeal
    from cases
    left join upheld_cases
        on upheld_cases.case_id = cases.case_id and upheld_cases.department_id = cases.department_id
    -- (a left join: a case is never dropped for a date outside the calendar)
    left join calendar as received on received.calendar_date = cast(cases.received_at as date)
    left join calendar as completed on completed.calendar_date = cast(cases.completed_at as date)
    left join calendar as rectified on rectified.calendar_date = cast(cases.rectified_at as date)
),

final as (
    select
        *,
        due_at is not null or time_limit_days is not null as has_deadline,
        case when due_at is not null then completed_at <= due_at
             else completed_working_day <= due_working_day end as completed_on_time,
        rating <= 2 and not (coalesce(appeal_upheld, false) or upheld_on_appeal) as counts_as_bad_review,
        rating is not null and not (rating <= 2 and (coalesce(appeal_upheld, false) or upheld_on_appeal))
            as counts_as_rated
    from timed
)

select * from final
