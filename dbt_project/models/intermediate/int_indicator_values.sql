{{ config(materialized='table') }}
-- Every indicator value of the catalogue, per department and period, for
-- departments in office in the period (any of its days: a year scores a department
-- that merged mid-year on its months in office), with the catalogue version in force on the
-- period's first day. An indicator with a denominator (per capita, per GDP) is
-- divided by that series of the same department and period first. A value from
-- fewer observations than the indicator's min_obs is marked: it counts as missing.
-- A department whose year counts with its successor's (int_departments__year_successors)
-- has no year value of its own, not even one it reported itself.
with unioned as (
    -- n_unknown: cases left out of a denominator as unknown; only transactions record any
    select * from {{ ref('int_indicator_values__transactions') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__complaints') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__surveys') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__leader_reviews') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__budget') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__projects') }}
    union all select *, 0 as n_unknown from {{ ref('int_indicator_values__observations') }}
),

departments as (
    select * from {{ ref('stg_reference__departments') }}
),

merged_in_year as (
    select * from {{ ref('int_departments__year_successors') }}
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

final as (
    select
        unioned.period,
        cast(unioned.period_type as string) as period_type,
        unioned.department_id,
        unioned.indicator_id,
        -- rounded before dividing: a quotient of two fixed doubles is itself fixed,
        -- and a small per-capita figure keeps all its digits
        case when indicators.denominator is null then {{ stored_value('unioned.raw_value') }}
             when denominators.raw_value <> 0
             then {{ stored_value('unioned.raw_value') }} / {{ stored_value('denominators.raw_value') }}
        end as raw_value,
        cast(unioned.n_obs as bigint) as n_obs,
        cast(unioned.n_unknown as bigint) as n_unknown,
        indicators.catalogue_version,
        indicators.min_obs,
        unioned.n_obs >= indicators.min_obs as meets_min_obs
    from unioned
    inner join departments
        on departments.department_id = unioned.department_id
       and departments.valid_from < {{ period_after('unioned.period', 'unioned.period_type') }}
       and (departments.valid_to is null or departments.valid_to >= unioned.period)
    inner join indicators
        on indicators.node_id = unioned.indicator_id
       and unioned.period between indicators.effective_from and indicators.effective_to
    left join unioned as denominators
        on denominators.department_id = unioned.department_id
       and denominators.period = unioned.period
       and denominators.period_type = unioned.period_type
       and denominators.indicator_id = indicators.denominator
    left join merged_in_year
        on unioned.period_type = 'year'
       and merged_in_year.department_id = unioned.department_id
       and merged_in_year.period = unioned.period
    where merged_in_year.department_id is null
)

select * from final
