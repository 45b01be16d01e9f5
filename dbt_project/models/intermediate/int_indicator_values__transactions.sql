{{ config(materialized='table') }}
-- Indicators from service transactions, per department, at month and quarter
-- grain (a quarter pools its cases). Time, on-time and review indicators use the
-- completion month; volume, channel and materials the receipt month. A case
-- still open at a period's end with its limit run out counts as not on time in
-- that period (and in every later period it is still open at the end of), as
-- PRODUCT.md defines.
with cases as (
    select * from {{ ref('int_transactions__timed') }}
),

grains as {{ period_grains() }},

completed as (
    select
        {{ scored_department('cases.department_id') }} as department_id,
        {{ grain_period('cases.completed_month', 'grains.period_type') }} as period,
        grains.period_type,
        count(*) as n_completed,
        {{ median('cases.days_to_close') }} as median_days,
        {{ median('cases.processing_hours') }} as median_hours,
        avg(cases.processing_hours) as mean_hours,
        {{ percentile('cases.processing_hours', 0.9) }} as p90_hours,
        sum(case when cases.counts_as_rated then 1 else 0 end) as n_rated,
        sum(case when cases.counts_as_rated and cases.rating >= 3 then 1 else 0 end) as n_good,
        sum(case when cases.counts_as_bad_review then 1 else 0 end) as n_bad,
        sum(case when cases.counts_as_bad_review and cases.rectified and cases.rectification_working_days <= 15
                 then 1 else 0 end) as n_rectified
    from cases
    cross join grains
    {{ join_year_successor('cases.department_id', 'cases.completed_month') }}
    where cases.completed_at is not null and {{ in_grain_scope('cases.completed_month', 'grains.period_type') }}
    group by 1, 2, 3
),

-- Cases judged on time or not (int_transactions__on_time_judged), counted.
on_time as (
    select
        {{ scored_department('judged.department_id') }} as department_id,
        judged.period,
        judged.period_type,
        sum(case when judged.completed_on_time_in_period then 1 else 0 end) as n_on_time,
        count(*) as n_judged
    from {{ ref('int_transactions__on_time_judged') }} as judged
    {{ join_year_successor('judged.department_id', 'judged.period', 'judged.period_type') }}
    group by 1, 2, 3
),

received as (
    select
        {{ scored_department('cases.department_id') }} as department_id,
        {{ grain_period('cases.received_month', 'grains.period_type') }} as period,
        grains.period_type,
        count(*) as n_received,
        sum(case when cases.channel = 'online' then 1 else 0 end) as n_online,
        sum(case when cases.channel = 'unknown' then 1 else 0 end) as n_channel_unknown,
        sum(cases.materials_required) as materials_required,
        sum(cases.materials_submitted) as materials_submitted
    from cases
    cross join grains
    {{ join_year_successor('cases.department_id', 'cases.received_month') }}
    where {{ in_grain_scope('cases.received_month', 'grains.period_type') }}
    group by 1, 2, 3
),

-- n_unknown: the cases an indicator left out of its denominator because the
-- extract recorded what it needs as unknown (the online rate: channel unknown).
long as (
    select period, period_type, department_id, 'on_time_rate' as indicator_id,
           100e0 * n_on_time / nullif(n_judged, 0) as raw_value,
           n_judged as n_obs, 0 as n_unknown
    from on_time
    union all
    select period, period_type, department_id, 'median_days_to_close', median_days, n_completed, 0 from completed
    union all
    select period, period_type, department_id, 'median_processing_hours', median_hours, n_completed, 0 from completed
    union all
    select period, period_type, department_id, 'mean_processing_hours', mean_hours, n_completed, 0 from completed
    union all
    select period, period_type, department_id, 'p90_processing_hours', p90_hours, n_completed, 0 from completed
    union all
    select period, period_type, department_id, 'good_review_rate', 100e0 * n_good / nullif(n_rated, 0), n_rated, 0
    from completed
    union all
    select period, period_type, department_id, 'rectification_rate', 100e0 * n_rectified / nullif(n_bad, 0), n_bad, 0
    from completed
    union all
    select period, period_type, department_id, 'online_rate',
           100e0 * n_online / nullif(n_received - n_channel_unknown, 0), n_received - n_channel_unknown,
           n_channel_unknown
    from received
    union all
    select period, period_type, department_id, 'material_reduction_rate',
           100e0 * (1 - 1e0 * materials_submitted / nullif(materials_required, 0)), n_received, 0
    from received
    union all
    select period, period_type, department_id, 'transactions_received', cast(n_received as double), n_received, 0
    from received
)

-- a value, or none but cases left out as unknown (their count is shown, n_obs 0)
select * from long where raw_value is not null or n_unknown > 0
