{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
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
    cast(s.period as date) as period,
    cast(s.period_type as string) as period_type,
    cast(s.department_id as string) as department_id,
    cast(s.level as integer) as level,
    cast(s.node_id as string) as dimension,
    {{ stored_score('s.score', 'v.stored_decimals', 'v.round_mode') }} as score,
    cast(s.catalogue_version as string) as catalogue_version,
    -- ranked on the full-precision score rounded to rank_decimals (2) in the version's
    -- round_mode, like fct_rankings (the stored score is rounded to stored_decimals (4),
    -- and rounding twice could move a tie); an 'average' tie rule's fractional rank is
    -- rank_exact, `rank` then holds the minimum rank
    cast({{ rank_on_score('s.score', 's.period, s.period_type, s.node_id', 'v.rank_decimals', 'v.round_mode',
                          "case when v.rank_ties = 'dense' then 'dense' else 'min' end") }} as integer) as rank,
    cast({{ rank_on_score('s.score', 's.period, s.period_type, s.node_id', 'v.rank_decimals', 'v.round_mode',
                          'v.rank_ties') }} as double) as rank_exact
from scores as s
inner join {{ ref('stg_reference__catalogue_versions') }} as v on v.catalogue_version = s.catalogue_version
where {{ in_period_scope('s.period', 's.period_type') }}
