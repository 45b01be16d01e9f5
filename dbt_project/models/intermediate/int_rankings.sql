{{ config(materialized='table') }}
{%- set integer_ties = "case when rank_ties = 'dense' then 'dense' else 'min' end" %}
-- Composite score after bonus and penalty points (within the catalogue's caps),
-- grade (等次) by thresholds, quota and veto (一票否决), and ranks overall and
-- within peer group on the score rounded to 2 decimals, ties at the minimum rank.
with composite as (
    select period, period_type, department_id, catalogue_version, score as base_score
    from {{ ref('int_scores__aggregated') }}
    where level = 0
),

departments as (
    select * from {{ ref('stg_reference__departments') }}
),

versions as (
    select * from {{ ref('stg_reference__catalogue_versions') }}
),

-- 加减分 and 一票否决 of every month of the period (a quarter takes its three months').
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
    inner join {{ ref('stg_lake__adjustments') }} as items
        on items.department_id = composite.department_id
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
        least(coalesce(adjustments.bonus, 0), versions.bonus_cap) as bonus,
        greatest(coalesce(adjustments.penalty, 0), -versions.penalty_cap) as penalty,
        least(coalesce(adjustments.bonus, 0), versions.bonus_cap)
            + greatest(coalesce(adjustments.penalty, 0), -versions.penalty_cap) as bonus_points,
        nullif(adjustments.veto_reason, '') as veto_reason,
        versions.scale_lo, versions.scale_hi, versions.rank_decimals, versions.round_mode, versions.rank_ties
    from composite
    inner join departments on departments.department_id = composite.department_id
    inner join versions on versions.catalogue_version = composite.catalogue_version
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
    inner join {{ ref('stg_reference__catalogue_grades') }} as grades
        on grades.catalogue_version = ranked.catalogue_version
       and grades.min_score <= {{ rank_score('ranked.composite_score', 'ranked.rank_decimals', 'ranked.round_mode') }}
    group by 1, 2, 3
),

threshold_grade as (
    select ranked.*, grades.grade_order, grades.max_share
    from ranked
    inner join best_grade using (period, period_type, department_id)
    inner join {{ ref('stg_reference__catalogue_grades') }} as grades
        on grades.catalogue_version = ranked.catalogue_version and grades.grade_order = best_grade.grade_order
),

-- Then the quota: beyond max_share of all ranked departments, a grade drops one
-- step. Vetoed departments take no place in a quota (they get the lowest grade);
-- at the limit, ties are broken by department id so the quota is never exceeded.
quota_applied as (
    select
        *,
        case when max_share is not null and veto_reason is null
              and row_number() over (
                  partition by period, period_type, grade_order, veto_reason is null
                  order by {{ rank_score('composite_score', 'rank_decimals', 'round_mode') }} desc, department_id
              ) > floor(max_share * n_ranked)
             then grade_order + 1 else grade_order end as quota_grade_order
    from threshold_grade
),

-- The lowest grade of each catalogue version, and how many grades it has.
lowest as (
    select catalogue_version, max(grade_order) as grade_order, count(*) as n_grades
    from {{ ref('stg_reference__catalogue_grades') }}
    group by 1
),

worst as (
    select grades.catalogue_version, grades.grade, lowest.n_grades
    from {{ ref('stg_reference__catalogue_grades') }} as grades
    inner join lowest using (catalogue_version, grade_order)
),

final as (
    select
        q.period,
        q.period_type,
        q.department_id,
        q.peer_group,
        q.catalogue_version,
        q.base_score,
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
    inner join {{ ref('stg_reference__catalogue_grades') }} as g
        on g.catalogue_version = q.catalogue_version and g.grade_order = q.quota_grade_order
    inner join worst on worst.catalogue_version = q.catalogue_version
)

select * from final
