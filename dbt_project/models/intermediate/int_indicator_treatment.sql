{{ config(materialized='table') }}
-- The outlier treatment of each indicator and period, as the catalogue names it,
-- and what it did: the caps applied, how many times each side was capped, and the
-- skewness and kurtosis before and after. Applied to values after imputation.
--   winsorise:     caps at the `lower` and `upper` percentiles of the period's values.
--   skew_kurtosis: COINr's rule. While |skewness| > max_skewness and kurtosis >
--                  max_kurtosis, the most extreme value on the side of the skew
--                  (high when skewness >= 0), with its ties, is set to the next
--                  value in; at most max_treated_points times. The loop is unrolled
--                  here; a step that does not fire leaves the caps as they were.
{%- set max_steps = 10 %}

with indicators as (
    select * from {{ ref('stg_reference__catalogue_nodes') }} where is_indicator
),

treatable as (
    select v.period, v.period_type, v.indicator_id, v.catalogue_version, v.department_id, v.value
    from {{ ref('int_indicator_imputed') }} as v
    where v.value is not null
),

-- Values in order within their indicator and period, for the percentiles of
-- winsorisation (the fractions are per indicator, so they are computed from the
-- positions rather than with a percentile aggregate that wants a constant).
ordered as (
    select
        t.*,
        i.outlier_method, i.winsor_lower, i.winsor_upper, i.max_skewness, i.max_kurtosis, i.max_treated_points,
        row_number() over (
            partition by t.period, t.period_type, t.indicator_id, t.catalogue_version order by t.value
        ) as position,
        count(*) over (partition by t.period, t.period_type, t.indicator_id, t.catalogue_version) as n
    from treatable as t
    inner join indicators as i on i.node_id = t.indicator_id and i.catalogue_version = t.catalogue_version
),

groups as (
    select
        period, period_type, indicator_id, catalogue_version,
        outlier_method, winsor_lower, winsor_upper, max_skewness, max_kurtosis, max_treated_points,
        min(value) as min_value,
        max(value) as max_value,
        {{ interpolated_percentile('winsor_lower') }} as lower_percentile,
        {{ interpolated_percentile('winsor_upper') }} as upper_percentile
    from ordered
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, n
),

caps_0 as (
    select
        period, period_type, indicator_id, catalogue_version, outlier_method, lower_percentile, upper_percentile,
        max_skewness, max_kurtosis, max_treated_points,
        min_value as lo, max_value as hi, 0 as n_low, 0 as n_high
    from groups
),
{% for step in range(max_steps + 1) %}
means_{{ step }} as (
    select
        c.period, c.period_type, c.indicator_id, c.catalogue_version,
        c.outlier_method, c.lower_percentile, c.upper_percentile,
        c.max_skewness, c.max_kurtosis, c.max_treated_points, c.lo, c.hi, c.n_low, c.n_high,
        count(*) as n,
        sum(least(greatest(t.value, c.lo), c.hi)) / count(*) as mean_value,
        max(case when t.value < c.hi then t.value end) as next_high,
        min(case when t.value > c.lo then t.value end) as next_low
    from caps_{{ step }} as c
    inner join treatable as t
        on t.period = c.period and t.period_type = c.period_type
       and t.indicator_id = c.indicator_id and t.catalogue_version = c.catalogue_version
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
),

shape_{{ step }} as (
    select
        -- m's columns spelled out: Spark allows no * beside GROUP BY positions
        m.period, m.period_type, m.indicator_id, m.catalogue_version,
        m.outlier_method, m.lower_percentile, m.upper_percentile,
        m.max_skewness, m.max_kurtosis, m.max_treated_points, m.lo, m.hi, m.n_low, m.n_high,
        m.n, m.mean_value, m.next_high, m.next_low,
        -- rounded, so that a value on a threshold is judged the same whatever the
        -- order the rows were summed in
        round({{ sample_skewness('m.n', 'sum(power(least(greatest(t.value, m.lo), m.hi) - m.mean_value, 2))',
                                 'sum(power(least(greatest(t.value, m.lo), m.hi) - m.mean_value, 3))') }}, 10)
            as skewness,
        round({{ sample_kurtosis('m.n', 'sum(power(least(greatest(t.value, m.lo), m.hi) - m.mean_value, 2))',
                                 'sum(power(least(greatest(t.value, m.lo), m.hi) - m.mean_value, 4))') }}, 10)
            as kurtosis
    from means_{{ step }} as m
    inner join treatable as t
        on t.period = m.period and t.period_type = m.period_type
       and t.indicator_id = m.indicator_id and t.catalogue_version = m.catalogue_version
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
),
{%- if step < max_steps %}

caps_{{ step + 1 }} as (
    select
        period, period_type, indicator_id, catalogue_version, outlier_method, lower_percentile, upper_percentile,
        max_skewness, max_kurtosis, max_treated_points,
        -- winsorisation sets its caps in the first step (so the shape after it is
        -- measured too); the skewness/kurtosis rule moves them one value at a time
        case {% if step == 0 %}when outlier_method = 'winsorise' then lower_percentile {% endif -%}
             when fires and skewness < 0 then coalesce(next_low, lo) else lo end as lo,
        case {% if step == 0 %}when outlier_method = 'winsorise' then upper_percentile {% endif -%}
             when fires and skewness >= 0 then coalesce(next_high, hi) else hi end as hi,
        n_low + case when fires and skewness < 0 then 1 else 0 end as n_low,
        n_high + case when fires and skewness >= 0 then 1 else 0 end as n_high
    from (
        select
            *,
            coalesce(outlier_method = 'skew_kurtosis' and abs(skewness) > max_skewness
                     and kurtosis > max_kurtosis and n_low + n_high < max_treated_points, false) as fires
        from shape_{{ step }}
    ) as judged
),
{%- endif %}
{% endfor %}

final as (
    select
        g.period,
        g.period_type,
        g.indicator_id,
        g.catalogue_version,
        g.outlier_method,
        case g.outlier_method
            when 'winsorise' then g.lower_percentile
            when 'skew_kurtosis' then case when after.n_low > 0 then after.lo end
        end as lower_cap,
        case g.outlier_method
            when 'winsorise' then g.upper_percentile
            when 'skew_kurtosis' then case when after.n_high > 0 then after.hi end
        end as upper_cap,
        case when g.outlier_method = 'skew_kurtosis' then after.n_low else 0 end as times_capped_low,
        case when g.outlier_method = 'skew_kurtosis' then after.n_high else 0 end as times_capped_high,
        before.skewness as skewness_before,
        before.kurtosis as kurtosis_before,
        after.skewness as skewness_after,
        after.kurtosis as kurtosis_after,
        -- COINr would fall back to a log transform here; govperf leaves the
        -- values as capped and says so (the bulletin's methodology lists it).
        g.outlier_method = 'skew_kurtosis'
            and coalesce(abs(after.skewness) > g.max_skewness and after.kurtosis > g.max_kurtosis, false)
            as still_outside_thresholds
    from groups as g
    inner join shape_0 as before
        on before.period = g.period and before.period_type = g.period_type
       and before.indicator_id = g.indicator_id and before.catalogue_version = g.catalogue_version
    inner join shape_{{ max_steps }} as after
        on after.period = g.period and after.period_type = g.period_type
       and after.indicator_id = g.indicator_id and after.catalogue_version = g.catalogue_version
)

select * from final
