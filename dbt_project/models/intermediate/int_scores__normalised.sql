{{ config(materialized='table') }}
-- Each indicator's treated value on a 0-100 scale, higher is better, by the method
-- the catalogue names (macro normalised_scores, shared with the Monte Carlo).
-- Annual-only indicators are scored for the year only.
with treated as (
    select * from {{ ref('int_indicator_treated') }} where treated_value is not null
),

indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

inputs as (
    select
        t.period, t.period_type, t.catalogue_version, t.department_id, t.indicator_id,
        t.treated_value as value,
        i.direction, i.normalisation, i.target, i.goalpost_lo, i.goalpost_hi,
        i.scale_lo, i.scale_hi, i.round_digits, i.round_mode
    from treated as t
    inner join indicators as i on i.node_id = t.indicator_id and i.catalogue_version = t.catalogue_version
    -- an annual-only indicator (a year-end 民主测评) is scored for the year only; in a
    -- month or quarter it is missing, its weight shared among its siblings
    where t.period_type = 'year' or not coalesce(i.annual_only, false)
)

{{ normalised_scores('inputs', ['period', 'period_type', 'catalogue_version']) }}
