{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- Scores of every aggregate node (dimension 'composite' is the overall score,
-- before bonus and penalty points; fct_rankings has the score after them), and the
-- department's rank on each node among the departments scored in the period. A
-- built-up year's nodes are its quarters' weighted scores (int_scores__built_up).
with scores as (
    select
        pooled.period, pooled.period_type, pooled.department_id, pooled.level, pooled.node_id,
        pooled.catalogue_version, coalesce(built_up.score, pooled.score) as score
    from {{ ref('int_scores__aggregated') }} as pooled
    left join {{ ref('int_scores__built_up') }} as built_up
        on built_up.period = pooled.period and built_up.period_type = pooled.period_type
       and built_up.catalogue_version = pooled.catalogue_version and built_up.department_id = pooled.department_id
       and built_up.node_id = pooled.node_id
)

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
from scores
where {{ in_period_scope('period', 'period_type') }}
