-- A quarterly leader review: the quarter's value, and applied to each month of
-- its quarter. A year pools its quarters' reviews.
with reviews as (
    select * from {{ ref('stg_lake__leader_reviews') }}
),

quarter_months as (
    select 0 as month_offset union all select 1 union all select 2
),

monthly as (
    select
        {{ add_months('reviews.quarter_start', 'quarter_months.month_offset') }} as period,
        'month' as period_type,
        reviews.department_id,
        'leader_review_score' as indicator_id,
        avg(reviews.score) as raw_value,
        count(*) as n_obs
    from reviews
    cross join quarter_months
    group by 1, 2, 3
),

-- The quarter's reviews, and the year's (a year pools its quarters' reviews).
pooled as (
    select
        {{ grain_period('reviews.quarter_start', 'grains.period_type') }} as period,
        grains.period_type,
        {{ scored_department('reviews.department_id') }} as department_id,
        'leader_review_score' as indicator_id,
        avg(reviews.score) as raw_value,
        count(*) as n_obs
    from reviews
    cross join {{ period_grains() }} as grains
    {{ join_year_successor('reviews.department_id', 'reviews.quarter_start') }}
    where grains.period_type <> 'month'
    group by 1, 2, 3
)

select * from monthly where {{ in_lookback_scope('period') }}
union all
select * from pooled where {{ in_period_scope('period', 'period_type') }}
