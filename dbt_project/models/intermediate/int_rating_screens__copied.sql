-- Rating-gaming screen copied_comment: the same non-trivial comment (at least
-- copied_min_chars characters once spacing, punctuation and case are set aside) under
-- many cases of one department. Stock phrases that citizens everywhere write are
-- expected: the department's count of a text is compared with what the other
-- departments' use of it predicts, rating level by rating level (praise goes with good
-- ratings): expected = sum over levels r of the department's comments at r times the
-- text's share of the other departments' comments at r (half a case added, so that a
-- text seen nowhere else still has a small expectation). The count is judged as
-- Poisson, times the long texts the department has (Bonferroni), and the department
-- by its most extreme text; a text needs copied_min_cases cases to count at all.
-- Every department with a long comment is in the family tested. n: its comments.
with comments as (
    select * from {{ ref('int_rating_screens__cases') }}
    where text_key is not null
),

-- screens watch months and quarters: a year pooled flags lasting small differences
grains as {{ period_grains(include_year=false) }},

in_grain as (
    select
        {{ grain_period('comments.month', 'grains.period_type') }} as period,
        grains.period_type,
        comments.department_id,
        comments.rating,
        comments.text_key,
        comments.text_chars
    from comments
    cross join grains
    where {{ in_grain_scope('comments.month', 'grains.period_type') }}
),

level_comments as (
    -- comments per department and rating level, and over the city
    select
        period, period_type, department_id, rating, count(*) as level_comment_count,
        sum(count(*)) over (partition by period, period_type, rating) as city_comment_count
    from in_grain
    group by 1, 2, 3, 4
),

level_texts as (
    -- each long text's cases per department and rating level, and over the city
    select
        period, period_type, department_id, rating, text_key, count(*) as cases,
        sum(count(*)) over (partition by period, period_type, rating, text_key) as city_cases
    from in_grain
    where text_chars >= {{ screen_setting('copied_min_chars') }}
    group by 1, 2, 3, 4, 5
),

department_texts as (
    -- every long text the department has counts as tried (Bonferroni); only those
    -- with copied_min_cases cases or more can be flagged
    select
        period, period_type, department_id, text_key, sum(cases) as observed,
        count(*) over (partition by period, period_type, department_id) as texts_tried
    from level_texts
    group by 1, 2, 3, 4
),

city_texts as (
    select period, period_type, rating, text_key, max(city_cases) as city_cases
    from level_texts
    group by 1, 2, 3, 4
),

expected as (
    -- every level the department has comments at, for each of its texts
    select
        texts.period,
        texts.period_type,
        texts.department_id,
        texts.text_key,
        texts.observed,
        texts.texts_tried,
        sum(levels.level_comment_count) as n,
        sum(
            {{ exact_term('levels.level_comment_count * (coalesce(city.city_cases, 0) - coalesce(own.cases, 0) + 0.5e0)'
                          ~ ' / (levels.city_comment_count - levels.level_comment_count + 1e0)') }}
        ) as expected_count
    from department_texts as texts
    inner join level_comments as levels
        on levels.period = texts.period
        and levels.period_type = texts.period_type
        and levels.department_id = texts.department_id
    left join city_texts as city
        on city.period = texts.period
        and city.period_type = texts.period_type
        and city.rating = levels.rating
        and city.text_key = texts.text_key
    left join level_texts as own
        on own.period = texts.period
        and own.period_type = texts.period_type
        and own.department_id = texts.department_id
        and own.rating = levels.rating
        and own.text_key = texts.text_key
    group by 1, 2, 3, 4, 5, 6
),

deviates as (
    select *, {{ count_tail_z('observed', 'expected_count', 'expected_count') }} as z
    from expected
),

judged as (
    select
        *,
        -- a text under copied_min_cases cases cannot be flagged: p = 1, but its department
        -- stays in the family the false-discovery rate is controlled over
        case when observed < {{ screen_setting('copied_min_cases') }} or z is null then 1.0
             else least(1.0, texts_tried * {{ normal_cdf('z') }}) end as p_value
    from deviates
),

ranked as (
    select
        *,
        row_number() over (
            partition by period, period_type, department_id order by p_value asc, observed desc, text_key asc
        ) as place
    from judged
)

select
    period,
    period_type,
    department_id,
    'copied_comment' as screen,
    text_key as subject,
    n,
    texts_tried as tried,
    observed,
    cast(observed as double) as statistic,
    expected_count as expected,
    cast(null as double) as rho,
    p_value
from ranked
where place = 1
