{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- The scores of every aggregate node of the months and quarters scored so far, kept
-- from run to run: a year built up from its quarters or months (int_scores__built_up)
-- needs those before the run's own months, as fct_rankings keeps the ranks it
-- compares with. A run replaces the periods in its scope.
select period, period_type, catalogue_version, department_id, node_id, level, score
from {{ ref('int_scores__aggregated') }}
where period_type <> 'year' and {{ in_period_scope('period', 'period_type') }}
