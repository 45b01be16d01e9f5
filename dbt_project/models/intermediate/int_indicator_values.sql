{{ config(materialized='table') }}
-- Every indicator value, per department and month, for departments in office
-- that month, with the catalogue version in force on the month's first day.
-- A value from fewer observations than the indicator's min_obs is kept but
-- marked, and is not scored (and a survey figure from too few respondents is
-- suppressed in the bulletin).
with unioned as (
    select * from {{ ref('int_indicator_values__transactions') }}
    union all select * from {{ ref('int_indicator_values__complaints') }}
    union all select * from {{ ref('int_indicator_values__surveys') }}
    union all select * from {{ ref('int_indicator_values__leader_reviews') }}
    union all select * from {{ ref('int_indicator_values__budget') }}
    union all select * from {{ ref('int_indicator_values__projects') }}
),

departments as (
    select * from {{ ref('stg_reference__departments') }}
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

final as (
    select
        unioned.period,
        unioned.department_id,
        unioned.indicator_id,
        {{ stored_value('unioned.raw_value') }} as raw_value,
        cast(unioned.n_obs as bigint) as n_obs,
        indicators.catalogue_version,
        unioned.n_obs >= indicators.min_obs as meets_min_obs
    from unioned
    inner join departments
        on departments.department_id = unioned.department_id
       and departments.valid_from <= {{ add_months('unioned.period', 1) }} - 1
       and (departments.valid_to is null or departments.valid_to >= unioned.period)
    inner join indicators
        on indicators.node_id = unioned.indicator_id
       and unioned.period between indicators.effective_from and indicators.effective_to
)

select * from final
