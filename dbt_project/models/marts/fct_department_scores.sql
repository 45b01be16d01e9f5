{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Scores of every aggregate node (dimension 'composite' is the overall score,
-- before bonus and penalty points; fct_rankings has the score after them).
select
    cast(period as date) as period,
    cast(period_type as varchar) as period_type,
    cast(department_id as varchar) as department_id,
    cast(level as integer) as level,
    cast(node_id as varchar) as dimension,
    {{ stored_score('score') }} as score,
    cast(catalogue_version as varchar) as catalogue_version
from {{ ref('int_scores__aggregated') }}
where {{ in_period_scope('period') }}
