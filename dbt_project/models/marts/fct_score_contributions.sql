{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- 得分构成: each period's composite as a sum of terms (int_score_contributions), kept
-- for every period published so that fct_score_changes can compare a period with
-- the one before and the one a year before, also when they are outside the run's
-- months. Values at full precision (10 decimals): the terms of a department and
-- period add up to its fct_rankings.composite_score.
select
    cast(period as date) as period,
    cast(period_type as string) as period_type,
    cast(department_id as string) as department_id,
    cast(catalogue_version as string) as catalogue_version,
    cast(term as string) as term,
    cast(term_type as string) as term_type,
    cast(score as double) as score,
    cast(weight as double) as weight,
    cast(effective_weight as double) as effective_weight,
    cast(contribution as double) as contribution
from {{ ref('int_score_contributions') }}
where {{ in_period_scope('period', 'period_type') }}
