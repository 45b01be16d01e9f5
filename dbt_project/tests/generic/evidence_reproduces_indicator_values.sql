{#- Fails for every indicator value whose evidence does not give it: n_obs is the
    denominator rows' weight (per distinct unit, e.g. respondent), and a ratio's
    raw_value is scale × numerator rows / denominator rows. `model` is
    fct_indicator_evidence; `values` fct_indicator_values, `rules` dim_evidence_rule.
    Indicators the rules name, and those whose evidence rows come from a rule for
    the row's own indicator ('*'), are checked in every department, in the periods
    the build wrote (in_period_scope: every period when no window is set). The
    periods before were checked by the builds that wrote them, and the ledger's
    digests prove them unchanged since; re-checking them made a new month's test
    cost the whole history's (90 s at 10 M transactions). -#}
{% test evidence_reproduces_indicator_values(model, values, rules) %}
with units as (
    select distinct
        period, period_type, department_id, indicator_id,
        coalesce(unit_key, {{ dbt.concat(['file_hash', "':'", 'cast(source_line as string)']) }}) as unit,
        n_obs_weight, in_denominator, in_numerator
    from {{ model }}
    where included and {{ in_period_scope('period', 'period_type') }}
),

counted as (
    select
        period, period_type, department_id, indicator_id,
        sum(case when in_denominator then n_obs_weight else 0 end) as evidence_n_obs,
        sum(case when in_numerator then 1 else 0 end) as n_numerator,
        sum(case when in_denominator then 1 else 0 end) as n_denominator
    from units
    group by 1, 2, 3, 4
),

formulas as (
    select distinct indicator_id, formula, scale from {{ rules }} where indicator_id <> '*'
    union
    select distinct evidence.indicator_id, rules.formula, rules.scale
    from {{ model }} as evidence
    inner join {{ rules }} as rules on rules.indicator_id = '*' and rules.source = evidence.source
    where {{ in_period_scope('evidence.period', 'evidence.period_type') }}
),

compared as (
    select
        v.period, v.period_type, v.department_id, v.indicator_id, f.formula,
        v.n_obs, coalesce(c.evidence_n_obs, 0) as evidence_n_obs,
        v.raw_value,
        f.scale * c.n_numerator / nullif(c.n_denominator, 0) as evidence_ratio
    from {{ values }} as v
    inner join formulas as f on f.indicator_id = v.indicator_id
    left join counted as c
        on c.period = v.period and c.period_type = v.period_type
       and c.department_id = v.department_id and c.indicator_id = v.indicator_id
    where {{ in_period_scope('v.period', 'v.period_type') }}
)

select *
from compared
where n_obs <> evidence_n_obs
   or (formula = 'ratio' and raw_value is not null
       and (evidence_ratio is null or abs(raw_value - evidence_ratio) > 1e-9 * greatest(1, abs(raw_value))))
   or (formula = 'count' and raw_value is not null and raw_value <> evidence_n_obs)
{% endtest %}
