{{ config(materialized='incremental',
          incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(),
          on_schema_change='append_new_columns',
          pre_hook="{{ delete_months_in_scope() }}") }}
-- The 加减分 and 一票否决 items behind fct_rankings.bonus_points and veto_reason, one
-- row per item, so a bulletin can give each its reason and evidence. An item counts
-- in the period (month or quarter) whose months contain the file that carried it,
-- as in int_rankings (at a year, a merged department's items count with its
-- successor's under annual.merged_departments: successor).
select
    rankings.period,
    rankings.period_type,
    rankings.department_id,
    items.kind,
    cast(items.points as double) as points,
    items.reason,
    items.evidence_ref,
    items.file_hash,
    cast(items.source_line as bigint) as source_line
from {{ ref('fct_rankings') }} as rankings
inner join ({{ adjustment_items() }}) as items
    on items.counted_for = rankings.department_id
   and (rankings.period_type = 'year' or not items.only_in_year)
   and items.adjustment_month >= rankings.period
   and items.adjustment_month < {{ period_after('rankings.period', 'rankings.period_type') }}
where {{ in_period_scope('rankings.period', 'rankings.period_type') }}
