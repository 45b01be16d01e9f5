{{ config(materialized='table') }}
{%- set integer_ties = "case when rank_ties = 'dense' then 'dense' else 'min' end" %}
{%- set quota_group = "partition by period, period_type, grade_order, veto_reason is null" %}
-- Composite score after bonus and penalty points (within the catalogue's caps),
-- grade (等次) by thresholds, quota and veto (一票否决), and ranks overall and
-- within peer group on the score rounded to 2 decimals, ties at the minimum rank.
-- A year takes the version's annual grades, caps and quota tie rule
-- (pipelines/grading.py), and its twelve months' items.
-- A year whose version builds it up from its quarters takes that composite
-- (int_scores__built_up) instead of the pooled one.
with composite as (
    select
        pooled.period, pooled.period_type, pooled.department_id, pooled.catalogue_version,
        coalesce(built_up.score, pooled.score) as base_score,
        coalesce(built_up.base_method, 'tree') as base_method,
        built_up.built_from,
        built_up.annual_part,
        built_up.annual_share
    from {{ ref('int_scores__aggregated') }} as pooled
    left join {{ ref('int_scores__built_up') }} as built_up
        on built_up.period = pooled.period and built_up.period_type = pooled.period_type
       and built_up.catalogue_version = pooled.catalogue_version and built_up.department_id = pooled.department_id
       and built_up.node_id = pooled.node_id
    where pooled.level = 0
),

departments as (
    select * from {{ ref('stg_reference__departments') }}
),

versions as (
    select * from {{ ref('stg_reference__catalogue_versions') }}
),

-- Each period type's caps and quota tie rule: the year has its own.
caps as (
    select
        versions.catalogue_version, 'year' as period_type, versions.annual_bonus_cap as bonus_cap,
        versions.annual_penalty_cap as penalty_cap, versions.annual_quota_ties as quota_ties
    from versions
    union all
    select
        versions.catalogue_version, grains.period_type, versions.bonus_cap, versions.penalty_cap,
        versions.quota_ties
    from versions
    cross join {{ period_grains() }} as grains
    where grains.period_type <> 'year'
),

-- Each period type's grades: the year has its own.
grades as (
    select grades.*, grains.period_type
    from {{ ref('stg_reference__catalogue_grades') }} as grades
    cross join {{ period_grains() }} as grains
    where (grades.applies_to = 'year') = (grains.period_type = 'year')
),

-- 加减分 and 一票否决 of every month of the period (a quarter takes its three months',
-- a year its twelve).
adjustments as (
    select
        composite.period,
        composite.period_type,
        composite.department_id,
        sum(case when items.kind = 'bonus' then items.points else 0 end) as bonus,
        sum(case when items.kind = 'penalty' then items.points else 0 end) as penalty,
        {{ dbt.listagg("case when items.kind = 'veto' then items.reason end", "'；'", "order by items.reason") }}
            as veto_reason
    from composite
    inner join ({{ adjustment_items() }}) as items
        on items.counted_for = composite.department_id
       and (composite.period_type = 'year' or not items.only_in_year)
       and items.adjustment_month >= composite.period
       and items.adjustment_month < {{ period_after('composite.period', 'composite.period_type') }}
    group by 1, 2, 3
),

adjusted as (
    select
        composite.period,
        composite.period_type,
        composite.department_id,
        composite.catalogue_version,
        departments.peer_group,
        composite.base_score,
        composite.base_method,
        composite.built_from,
        composite.annual_part,
        composite.annual_share,
        least(coalesce(adjustments.bonus, 0), caps.bonus_cap) as bonus,
        greatest(coalesce(adjustments.penalty, 0), -caps.penalty_cap) as penalty,
        least(coalesce(adjustments.bonus, 0), caps.bonus_cap)
            + greatest(coalesce(adjustments.penalty, 0), -caps.penalty_cap) as bonus_points,
        caps.quota_ties,
        nullif(adjustments.veto_reason, '') as veto_reason,
        version_settings.scale_lo, version_settings.scale_hi, version_settings.rank_decimals,
        version_settings.round_mode, version_settings.rank_ties
    from composite
    inner join departments on departments.department_id = composite.department_id
    inner join versions as version_settings on version_settings.catalogue_version = composite.catalogue_version
    inner join caps on caps.catalogue_version = composite.catalogue_version and caps.period_type = composite.period_type
    left join adjustments
        on adjustments.department_id = composite.department_id and adjustments.period = composite.period
       and adjustments.period_type = composite.period_type
),

scored as (
    select
        *,
        {{ adjusted_composite('base_score', 'bonus_points', 'scale_lo', 'scale_hi') }} as composite_score
    from adjusted
),

ranked as (
    select
        *,
        {{ rank_on_score('composite_score', 'period, period_type', 'rank_decimals', 'round_mode', integer_ties) }}
            as overall_rank,
        {{ rank_on_score('composite_score', 'period, period_type, peer_group', 'rank_decimals', 'round_mode',
                         integer_ties) }} as group_rank,
        {{ rank_on_score('composite_score', 'period, period_type', 'rank_decimals', 'round_mode', 'rank_ties') }}
            as overall_rank_exact,
        count(*) over (partition by period, period_type) as n_ranked
    from scored
),

-- Grade by threshold first: the best grade whose minimum the score reaches.
best_grade as (
    select ranked.period, ranked.period_type, ranked.department_id, min(grades.grade_order) as grade_order
    from ranked
    inner join grades
        on grades.catalogue_version = ranked.catalogue_version and grades.period_type = ranked.period_type
       and grades.min_score <= {{ rank_score('ranked.composite_score', 'ranked.rank_decimals', 'ranked.round_mode') }}
    group by 1, 2, 3
),

threshold_grade as (
    select ranked.*, grades.grade_order, grades.max_share
    from ranked
    inner join best_grade using (period, period_type, department_id)
    inner join grades
        on grades.catalogue_version = ranked.catalogue_version and grades.period_type = ranked.period_type
       and grades.grade_order = best_grade.grade_order
),

-- Then the quota: beyond max_share of all ranked departments, a grade drops one
-- step. Vetoed departments take no place in a quota (they get the lowest grade).
-- Departments tied at the limit follow the version's quota_ties: broken by
-- department id (the quota is never exceeded), all keep the grade (it may be), or
-- all drop (it may be left unfilled).
-- the score as graded: rounded to the version's rank_decimals in its round_mode
graded as (
    select
        *,
        {{ rank_score('composite_score', 'rank_decimals', 'round_mode') }} as graded_score
    from threshold_grade
),

quota_places as (
    select
        *,
        -- the partition spelled out in each window: Spark cannot extend a named window
        row_number() over ({{ quota_group }} order by graded_score desc, department_id asc) as place_by_id,
        rank() over ({{ quota_group }} order by graded_score desc) as place_first_tied,
        count(*) over (
            {{ quota_group }} order by graded_score desc range between unbounded preceding and current row
        ) as place_last_tied
    from graded
),

quota_applied as (
    select
        *,
        case when max_share is not null and veto_reason is null
              and (case quota_ties when 'all_keep' then place_first_tied
                                   when 'all_drop' then place_last_tied
                                   else place_by_id end) > floor(max_share * n_ranked)
             then grade_order + 1 else grade_order end as quota_grade_order
    from quota_places
),

-- The lowest grade of each catalogue version and period type, and how many grades it has.
lowest as (
    select catalogue_version, period_type, max(grade_order) as grade_order, count(*) as n_grades
    from grades
    group by 1, 2
),

worst as (
    select grades.catalogue_version, grades.period_type, grades.grade, lowest.n_grades
    from grades
    inner join lowest using (catalogue_version, period_type, grade_order)
),

final as (
    select
        q.period,
        q.period_type,
        q.department_id,
        q.peer_group,
        q.catalogue_version,
        q.base_score,
        q.base_method,
        q.built_from,
        q.annual_part,
        q.annual_share,
        q.bonus,
        q.penalty,
        q.bonus_points,
        q.veto_reason,
        q.composite_score,
        q.overall_rank,
        q.group_rank,
        q.overall_rank_exact,
        q.n_ranked,
        case when q.veto_reason is not null then worst.grade else g.grade end as grade,
        -- (a catalogue with a single grade does not grade: nobody is "lowest")
        q.veto_reason is not null or (g.grade = worst.grade and worst.n_grades > 1) as is_lowest_grade
    from quota_applied as q
    inner join grades as g
        on g.catalogue_version = q.catalogue_version and g.period_type = q.period_type
       and g.grade_order = q.quota_grade_order
    inner join worst on worst.catalogue_version = q.catalogue_version and worst.period_type = q.period_type
)

select * from final
