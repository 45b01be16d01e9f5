-- Rating-gaming screen rating_burst: many ratings entered in a short window at one
-- service item or one channel of a department (the counter entering ratings itself).
-- Per department, period and subject (service item, channel): the most ratings in
-- any window of burst_window_minutes, tried at two offsets (windows starting on the
-- window and half-way through it). Under chance the ratings of the subject spread
-- over the period's working time: a window expects lambda = n / W ratings, W the
-- windows in the period's working hours (7 a working day; counting only working
-- hours makes lambda larger, the test conservative for ratings given online in the
-- evening). The largest window is judged by P(Poisson(lambda) >= max) times the 2W
-- windows tried (Bonferroni), and the department by its most extreme subject times
-- its subjects tried.
with cases as (
    select * from {{ ref('int_rating_screens__cases') }}
    where rated_at is not null
),

-- screens watch months and quarters: a year pooled flags lasting small differences
grains as {{ period_grains(include_year=false) }},

{% set window_seconds = screen_setting('burst_window_minutes') | int * 60 %}
in_grain as (
    select
        {{ grain_period('cases.month', 'grains.period_type') }} as period,
        grains.period_type,
        cases.department_id,
        cases.service_item,
        cases.channel,
        {{ dbt.datediff("cast('2000-01-01 00:00:00' as timestamp)", 'cases.rated_at', 'second') }}
            as rated_second
    from cases
    cross join grains
    where {{ in_grain_scope('cases.month', 'grains.period_type') }}
),

timed as (
    select period, period_type, department_id, '事项:' || service_item as subject, rated_second from in_grain
    union all
    select period, period_type, department_id, '渠道:' || channel as subject, rated_second from in_grain
),

windows as (
    select
        period, period_type, department_id, subject, 0 as offset_half,
        floor(rated_second / {{ window_seconds }}) as bucket
    from timed
    union all
    select
        period, period_type, department_id, subject, 1 as offset_half,
        floor((rated_second + {{ window_seconds }} / 2) / {{ window_seconds }}) as bucket
    from timed
),

per_window as (
    select period, period_type, department_id, subject, offset_half, bucket, count(*) as ratings
    from windows
    group by 1, 2, 3, 4, 5, 6
),

per_subject as (
    select
        period, period_type, department_id, subject,
        sum(case when offset_half = 0 then ratings else 0 end) as n,
        max(ratings) as most_in_window
    from per_window
    group by 1, 2, 3, 4
),

working_time as (
    -- windows of working time in each month (7 working hours a working day)
    select
        {{ month_of('calendar_date') }} as month,
        sum(case when is_working_day then 1 else 0 end) * 7 * 3600e0 / {{ window_seconds }} as windows
    from {{ ref('int_calendar__working_days') }}
    where {{ in_lookback_scope(month_of('calendar_date')) }}
    group by 1
),

period_time as (
    select
        {{ grain_period('working_time.month', 'grains.period_type') }} as period,
        grains.period_type,
        sum(working_time.windows) as windows
    from working_time
    cross join grains
    where {{ in_grain_scope('working_time.month', 'grains.period_type') }}
    group by 1, 2
),

tested as (
    select
        per_subject.*,
        period_time.windows,
        per_subject.n / period_time.windows as expected_per_window,
        count(*) over (partition by per_subject.period, per_subject.period_type, per_subject.department_id)
            as subjects_tried
    from per_subject
    inner join period_time
        on period_time.period = per_subject.period and period_time.period_type = per_subject.period_type
    where per_subject.n >= {{ screen_setting('min_timed_ratings') }}
),

deviates as (
    select *, {{ count_tail_z('most_in_window', 'expected_per_window', 'expected_per_window') }} as z
    from tested
),

judged as (
    select
        *,
        least(1.0, 2 * windows * subjects_tried
                   * (case when z is null then 1.0 else {{ normal_cdf('z') }} end)) as p_value
    from deviates
),

ranked as (
    select
        *,
        row_number() over (
            partition by period, period_type, department_id order by p_value asc, most_in_window desc, subject asc
        ) as place
    from judged
)

select
    period,
    period_type,
    department_id,
    'rating_burst' as screen,
    subject,
    n,
    subjects_tried as tried,
    most_in_window as observed,
    cast(most_in_window as double) as statistic,
    expected_per_window as expected,
    cast(null as double) as rho,
    p_value
from ranked
where place = 1
