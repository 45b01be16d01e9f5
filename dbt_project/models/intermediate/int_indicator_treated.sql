{{ config(materialized='table') }}
-- Each cell's value after imputation and outlier treatment: the value every
-- normalisation works on. A cell with no value stays missing (its weight is
-- shared out within its parent node).
with imputed as (
    select * from {{ ref('int_indicator_imputed') }}
),

treatment as (
    select * from {{ ref('int_indicator_treatment') }}
)

select
    imputed.*,
    case
        when imputed.value < treatment.lower_cap then treatment.lower_cap
        when imputed.value > treatment.upper_cap then treatment.upper_cap
        else imputed.value
    end as treated_value,
    coalesce(imputed.value < treatment.lower_cap or imputed.value > treatment.upper_cap, false) as is_treated
from imputed
left join treatment
    on treatment.period = imputed.period
   and treatment.period_type = imputed.period_type
   and treatment.indicator_id = imputed.indicator_id
   and treatment.catalogue_version = imputed.catalogue_version
