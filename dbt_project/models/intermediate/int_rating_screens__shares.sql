-- Three rating-gaming screens that compare a department's share with its peers':
--   rating_mismatch    ratings of 4-5 whose comment the sentiment model finds clearly
--                      negative, among the ratings of 4-5 with a scored comment
--   rating_uniformity  非常满意 (5) among all ratings
--   rating_fast        counter (offline) ratings entered within fast_rating_seconds of
--                      completion, among the counter ratings with a time (online
--                      ratings come later, by a text message's link: a department's
--                      channel mix must not look like gaming)
-- The reference is the department's peer group in the period, leaving the department
-- out (the other departments of the city when fewer than min_peers peers are tested);
-- the spread is never taken narrower than the city's typical peer-group spread.
-- Departments' shares differ for honest reasons, so the count is taken as
-- beta-binomial: mean share p and intraclass correlation rho (the spread between the
-- reference departments beyond chance, method of moments), and the p-value is its
-- exact one-sided tail P(X >= observed), summed term by term. The moments leave out
-- the reference departments far above the others by a robust yardstick (median and
-- median absolute deviation of the shares, plus the binomial noise of the department's
-- own share: more than 3 of it from the median, either way): one gamed peer, or one
-- failing peer, must not widen the spread enough to hide another. A count under
-- min_flagged_count is never a point to look into: p = 1
-- (the department stays in the family the false-discovery rate is controlled over).
-- docs/methodology.md.
with cases as (
    select * from {{ ref('int_rating_screens__cases') }}
),

-- screens watch months and quarters: a year pooled flags lasting small differences
grains as {{ period_grains(include_year=false) }},

counted as (
    select
        {{ grain_period('cases.month', 'grains.period_type') }} as period,
        grains.period_type,
        cases.department_id,
        max(cases.peer_group) as peer_group,
        sum(case when cases.rating >= 4 and cases.negative_p is not null then 1 else 0 end) as high_commented,
        sum(case when cases.rating >= 4 and cases.negative_p >= {{ screen_setting('mismatch_negative_from') }}
                 then 1 else 0 end) as high_negative,
        count(*) as rated,
        sum(case when cases.rating = 5 then 1 else 0 end) as very_satisfied,
        sum(case when cases.channel = 'offline' and cases.rated_at is not null and cases.completed_at is not null
                 then 1 else 0 end) as timed,
        sum(case when cases.channel = 'offline' and cases.rated_at is not null and cases.completed_at is not null
                  and {{ dbt.datediff('cases.completed_at', 'cases.rated_at', 'second') }}
                      between 0 and {{ screen_setting('fast_rating_seconds') }}
                 then 1 else 0 end) as fast
    from cases
    cross join grains
    where {{ in_grain_scope('cases.month', 'grains.period_type') }}
    group by 1, 2, 3
),

screens as (
    select
        period, period_type, department_id, peer_group, 'rating_mismatch' as screen,
        high_commented as n, high_negative as observed,
        {{ screen_setting('min_high_rated_comments') }} as min_n
    from counted
    union all
    select
        period, period_type, department_id, peer_group, 'rating_uniformity' as screen,
        rated as n, very_satisfied as observed, {{ screen_setting('min_ratings') }} as min_n
    from counted
    union all
    select
        period, period_type, department_id, peer_group, 'rating_fast' as screen,
        timed as n, fast as observed, {{ screen_setting('min_ratings') }} as min_n
    from counted
),

scoped as (
    -- each tested department once per scope: its peer group, and the city
    select screens.*, 'peer_group' as scope, screens.peer_group as scope_key
    from screens
    where screens.n >= screens.min_n
    union all
    select screens.*, 'city' as scope, 'city' as scope_key
    from screens
    where screens.n >= screens.min_n
),

{% set partition = 'partition by screen, period, period_type, scope, scope_key' %}
centred as (
    -- a robust centre and spread of the shares in each scope: the median share and the
    -- median absolute deviation; and the pooled share, for the binomial noise of one
    -- department's share
    select
        *,
        1e0 * observed / n as own_share,
        {{ median('1e0 * observed / n') }} over ({{ partition }}) as median_share,
        1e0 * sum(observed) over ({{ partition }}) / sum(n) over ({{ partition }}) as pooled_share
    from scoped
),

spread as (
    select
        *,
        {{ median('abs(own_share - median_share)') }} over ({{ partition }}) as mad_share
    from centred
),

outlying as (
    -- departments far from the others by that robust yardstick, either way: a gamed peer
    -- far above, or a failing one far below, would widen the spread the test allows
    select
        *,
        abs(own_share - median_share)
        > 3 * sqrt(power(1.4826 * mad_share, 2) + pooled_share * (1 - pooled_share) / n) as is_outlying
    from spread
),

reference_sums as (
    -- the moments' sums over the reference departments that are not outlying, less
    -- the department's own row when it is among them
    select
        period, period_type, department_id, screen, scope, scope_key, n, observed,
        sum(case when is_outlying then 0 else n end) over ({{ partition }})
            - case when is_outlying then 0 else n end as ref_n,
        sum(case when is_outlying then 0 else observed end) over ({{ partition }})
            - case when is_outlying then 0 else observed end as ref_x,
        sum(case when is_outlying then 0 else {{ exact_term('1e0 * observed * observed / n') }} end)
            over ({{ partition }})
            - case when is_outlying then 0 else {{ exact_term('1e0 * observed * observed / n') }} end as ref_xx,
        sum(case when is_outlying then 0 else n * n end) over ({{ partition }})
            - case when is_outlying then 0 else n * n end as ref_nn,
        sum(case when is_outlying then 0 else 1 end) over ({{ partition }})
            - case when is_outlying then 0 else 1 end as k
    from outlying
),

moments as (
    {{ _beta_binomial_moments('reference_sums') }}
),

typical as (
    -- the typical peer-group spread of the city in the period: the median of the
    -- departments' peer-group rho
    select
        *,
        {{ median("case when scope = 'peer_group' and k >= " ~ screen_setting('min_peers') ~ " then rho end") }}
            over (partition by screen, period, period_type) as typical_rho
    from moments
    where k >= 1
),

dispersed as (
    -- the peer group when it has min_peers departments left, else the city; the spread
    -- never below the city's typical peer-group spread: a handful of peers can look
    -- alike by chance, and a spread estimated as 0 from them would make any difference
    -- look significant
    select
        period,
        period_type,
        department_id,
        screen,
        max(n) as n,
        max(observed) as observed,
        max(case when scope = 'peer_group' and k >= {{ screen_setting('min_peers') }} then 'peer_group' end)
            as chosen,
        coalesce(
            max(case when scope = 'peer_group' and k >= {{ screen_setting('min_peers') }} then p end),
            max(case when scope = 'city' then p end)
        ) as p,
        greatest(
            coalesce(
                max(case when scope = 'peer_group' and k >= {{ screen_setting('min_peers') }} then rho end),
                max(case when scope = 'city' then rho end)
            ),
            coalesce(max(typical_rho), 0.0)
        ) as rho
    from typical
    group by 1, 2, 3, 4
),

tail_terms as (
    -- the exact one-sided tail: P(X >= observed) = sum of P(X = k), k = observed..n
    select
        dispersed.period,
        dispersed.period_type,
        dispersed.department_id,
        dispersed.screen,
        dispersed.n,
        dispersed.p,
        dispersed.rho,
        {{ integer_range('dispersed.observed', 'dispersed.n') }} as k
    from dispersed
    where dispersed.observed >= {{ screen_setting('min_flagged_count') }}
),

tails as (
    select
        period,
        period_type,
        department_id,
        screen,
        sum({{ exact_term('exp(' ~ log_beta_binomial_pmf('n', 'k', 'p', 'rho') ~ ')') }}) as upper_tail
    from tail_terms
    group by 1, 2, 3, 4
)

select
    dispersed.period,
    dispersed.period_type,
    dispersed.department_id,
    dispersed.screen,
    coalesce(dispersed.chosen, 'city') as subject,
    dispersed.n,
    1 as tried,
    dispersed.observed,
    1e0 * dispersed.observed / dispersed.n as statistic,
    dispersed.p as expected,
    dispersed.rho,
    case when dispersed.observed < {{ screen_setting('min_flagged_count') }} then 1.0
         else least(1.0, coalesce(tails.upper_tail, 1.0)) end as p_value
from dispersed
left join tails
    on tails.period = dispersed.period
    and tails.period_type = dispersed.period_type
    and tails.department_id = dispersed.department_id
    and tails.screen = dispersed.screen
