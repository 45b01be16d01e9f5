-- Budget deviation: |year-to-date actual / year-to-date plan - 1|, in percent.
with monthly as (
    select department_id, budget_month, sum(planned_amount) as planned, sum(actual_amount) as actual
    from {{ ref('stg_lake__budget_execution') }}
    group by 1, 2
),

year_to_date as (
    select
        department_id,
        budget_month as period,
        sum(planned) over (
            partition by department_id, {{ dbt.date_trunc('year', 'budget_month') }}
            order by budget_month rows between unbounded preceding and current row
        ) as planned_ytd,
        sum(actual) over (
            partition by department_id, {{ dbt.date_trunc('year', 'budget_month') }}
            order by budget_month rows between unbounded preceding and current row
        ) as actual_ytd,
        count(*) over (
            partition by department_id, {{ dbt.date_trunc('year', 'budget_month') }}
            order by budget_month rows between unbounded preceding and current row
        ) as months_reported
    from monthly
),

-- A quarter's deviation is the year to date at its last month; a year's, at December.
deviation as (
    select
        period,
        department_id,
        'budget_deviation' as indicator_id,
        100.0 * abs(actual_ytd / planned_ytd - 1) as raw_value,
        months_reported as n_obs
    from year_to_date
    where planned_ytd > 0
)

select period, 'month' as period_type, department_id, indicator_id, raw_value, n_obs
from deviation
where {{ in_lookback_scope('period') }}
union all
select {{ add_months('period', -2) }}, 'quarter', department_id, indicator_id, raw_value, n_obs
from deviation
where extract(month from period) in (3, 6, 9, 12) and {{ in_period_scope(add_months('period', -2), "'quarter'") }}
union all
select {{ add_months('period', -11) }}, 'year', department_id, indicator_id, raw_value, n_obs
from deviation
where extract(month from period) = 12 and {{ in_period_scope(add_months('period', -11), "'year'") }}
