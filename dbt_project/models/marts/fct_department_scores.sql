{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Scores of every aggregate node (dimension 'composite' is the overall score,
-- before bonus and penalty points; fct_rankings has the score after them), and the
-- department's rank on each node among the departments scored in the period.
select
    cast(period as date) as period,
    cast(period_type as varchar) as period_type,
    cast(department_id as varchar) as department_id,
    cast(level as integer) as level,
    cast(node_id as varchar) as dimension,
    {{ stored_score('score') }} as score,
    cast(catalogue_version as varchar) as catalogue_version,
    -- ranked on the full-precision score rounded to 2 decimals, like fct_rankings
    -- (the stored score is rounded to 4, and rounding twice could move a tie)
    cast({{ rank_on_score('score', 'period, period_type, node_id') }} as integer) as rank
from {{ ref('int_scores__aggregated') }}
where {{ in_period_scope('period', 'period_type') }}
