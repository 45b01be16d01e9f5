-- A quarterly leader review applies to each month of its quarter.
with reviews as (
    select * from {{ ref('stg_lake__leader_reviews') }}
),

quarter_months as (
    select 0 as month_offset union all select 1 union all select 2
),

final as (
    select
        {{ add_months('reviews.quarter_start', 'quarter_months.month_offset') }} as period,
        reviews.department_id,
        'leader_review_score' as indicator_id,
        avg(reviews.score) as raw_value,
        count(*) as n_obs
    from reviews
    cross join quarter_months
    group by 1, 2
)

select * from final where {{ in_lookback_scope('period') }}
