-- Working days: Monday to Friday, except public holidays, plus make-up working
-- days (调休). working_day_number counts working days from the start of the
-- calendar, so "N working days after" is a difference of two numbers.
with days as (
    {{ date_series('2000-01-01', '2050-12-31') }}
),

exceptions as (
    select * from {{ ref('stg_reference__calendar_exceptions') }}
),

flagged as (
    select
        days.calendar_date,
        coalesce(exceptions.is_working_day, {{ iso_day_of_week('days.calendar_date') }} <= 5) as is_working_day
    from days
    left join exceptions on exceptions.calendar_date = days.calendar_date
),

final as (
    select
        calendar_date,
        is_working_day,
        sum(case when is_working_day then 1 else 0 end) over (
            order by calendar_date rows between unbounded preceding and current row
        ) as working_day_number
    from flagged
)

select * from final
