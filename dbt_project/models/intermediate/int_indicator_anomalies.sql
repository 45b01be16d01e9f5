-- Anomalies in indicator series (docs/methodology.md §13f): every reported raw value of
-- the run's periods against two references, each as a robust z = (x - centre) / scale.
--   own      the department's own values of the same period type in the previous
--            `history` periods (months, or quarters): centre = their median, scale =
--            1.4826 x their median absolute deviation (MAD). With `seasonal_min_months`
--            months of monthly history the month is judged seasonally instead (kind
--            seasonal): expected = its trailing 12-month level + the median of the same
--            calendar month's earlier offsets from their own trailing levels; scale =
--            1.4826 x the MAD of that same one-year-back prediction's errors over the
--            previous `history` months. Needs `min_history` values (or errors).
--   peer     the other departments of its peer group in the period (at least
--            `min_peers`, else the other departments of the city): median and MAD.
-- The scale is never below scale_floor x the indicator's level (the larger of |centre|
-- and the city median of |value| in the period): a flat history must not turn a tiny
-- move into an infinite z; nor below the sampling noise of the value itself, from its
-- n_obs: for a ratio (vars.evidence_rules formula ratio) the binomial scale^2 x p(1 - p)
-- / n_obs with p from the centre (one late case of three is not an anomaly); for any
-- other indicator the city's typical relative variance per observation in the period
-- (the median over departments of n_obs x ((x - own centre) / level)^2, / 0.4549, the
-- median of a chi-square with 1 df) x level^2 / n_obs. A scale estimated from 6-12
-- values can come out small by chance; the noise of a small department's p90 or mean
-- is large by nature. One row per cell and kind tested; the change warning of
-- fct_warnings is the worse-direction z of the own row (one statistic, not two).
{% set keys = 'period, period_type, department_id, indicator_id' %}
{% set ratios = [] %}
{% for rule in var('evidence_rules', []) if rule.formula == 'ratio' and rule.indicator_id %}
    {% do ratios.append("select '" ~ rule.indicator_id ~ "' as indicator_id, " ~ rule.scale ~ " as ratio_scale") %}
{% endfor %}
with ratio_indicators as (
    -- indicators that are a share of counted cases, and their scale (100: percent)
    {{ ratios | join('\n    union all\n    ') if ratios
       else 'select cast(null as string) as indicator_id, 1.0 as ratio_scale where 1 = 0' }}
),

nodes as (
    select
        catalogue_version,
        node_id as indicator_id,
        direction,
        anomaly_enabled,
        anomaly_sensitivity,
        bound_lo,
        bound_hi
    from {{ ref('stg_reference__catalogue_nodes') }}
    where is_indicator
),

versions as (
    select
        catalogue_version,
        anomaly_history,
        anomaly_min_history,
        anomaly_min_peers,
        anomaly_seasonal_min_months,
        anomaly_scale_floor,
        anomaly_peer
    from {{ ref('stg_reference__catalogue_versions') }}
),

series as (
    -- every reported value (imputed and below-min_obs cells have none): the references
    select
        v.period,
        v.period_type,
        v.department_id,
        v.indicator_id,
        v.catalogue_version,
        v.raw_value,
        v.n_obs,
        d.peer_group
    from {{ ref('fct_indicator_values') }} as v
    left join {{ ref('dim_department') }} as d on d.department_id = v.department_id
    where v.raw_value is not null
),

city_level as (
    -- the indicator's level in the period, for the scale's floor
    select
        period,
        period_type,
        indicator_id,
        {{ median('abs(raw_value)') }} as city_level,
        min(raw_value) >= 0 as never_negative
    from series
    group by period, period_type, indicator_id
),

cells as (
    -- the values tested: the run's periods, indicators of the catalogue in force
    select
        s.*,
        n.direction,
        n.anomaly_enabled,
        n.anomaly_sensitivity,
        n.bound_lo,
        n.bound_hi,
        ver.anomaly_history,
        ver.anomaly_min_history,
        ver.anomaly_min_peers,
        ver.anomaly_seasonal_min_months,
        ver.anomaly_scale_floor,
        ver.anomaly_peer,
        cl.city_level,
        cl.never_negative,
        r.ratio_scale,
        {{ months_in_period('s.period_type') }} as months_per_period
    from series as s
    inner join nodes as n on n.indicator_id = s.indicator_id and n.catalogue_version = s.catalogue_version
    inner join versions as ver on ver.catalogue_version = s.catalogue_version
    inner join city_level as cl
        on cl.period = s.period and cl.period_type = s.period_type and cl.indicator_id = s.indicator_id
    left join ratio_indicators as r on r.indicator_id = s.indicator_id
    where {{ in_period_scope('s.period', 's.period_type') }}
),

-- own history ---------------------------------------------------------------------
own_window as (
    select
        c.period,
        c.period_type,
        c.department_id,
        c.indicator_id,
        past.raw_value as past_value
    from cells as c
    inner join series as past
        on past.department_id = c.department_id
       and past.indicator_id = c.indicator_id
       and past.period_type = c.period_type
       and past.period < c.period
       and past.period >= {{ add_months('c.period', '-c.anomaly_history * c.months_per_period') }}
),

own_centre as (
    select
        {{ keys }},
        count(*) as n_reference,
        {{ median('past_value') }} as centre
    from own_window
    group by {{ keys }}
),

own_spread as (
    select
        w.period,
        w.period_type,
        w.department_id,
        w.indicator_id,
        max(oc.n_reference) as n_reference,
        max(oc.centre) as centre,
        {{ median('abs(w.past_value - oc.centre)') }} as mad
    from own_window as w
    inner join own_centre as oc
        on oc.period = w.period and oc.period_type = w.period_type
       and oc.department_id = w.department_id and oc.indicator_id = w.indicator_id
    group by w.period, w.period_type, w.department_id, w.indicator_id
),

-- seasonal (months only) -------------------------------------------------------------
monthly as (
    select department_id, indicator_id, period, raw_value
    from series
    where period_type = 'month'
),

trailing_levels as (
    -- each month's level: the median of the 12 months before it (at least 6 of them),
    -- and its offset from that level
    select
        m.department_id,
        m.indicator_id,
        m.period,
        max(m.raw_value) - {{ median('p.raw_value') }} as offset_value,
        {{ median('p.raw_value') }} as level_value
    from monthly as m
    inner join monthly as p
        on p.department_id = m.department_id and p.indicator_id = m.indicator_id
       and p.period < m.period and p.period >= {{ add_months('m.period', -12) }}
    group by m.department_id, m.indicator_id, m.period
    having count(*) >= 6
),

year_errors as (
    -- the seasonal prediction made with one earlier year, and its error: a month's
    -- offset less the same calendar month's offset a year before
    select
        t.department_id,
        t.indicator_id,
        t.period,
        t.offset_value - a.offset_value as error_value
    from trailing_levels as t
    inner join trailing_levels as a
        on a.department_id = t.department_id and a.indicator_id = t.indicator_id
       and a.period = {{ add_months('t.period', -12) }}
),

seasonal_cells as (
    -- the months with enough monthly history for the seasonal judgement
    select
        c.period,
        c.period_type,
        c.department_id,
        c.indicator_id
    from cells as c
    inner join monthly as h
        on h.department_id = c.department_id and h.indicator_id = c.indicator_id and h.period < c.period
    where c.period_type = 'month'
    group by c.period, c.period_type, c.department_id, c.indicator_id, c.anomaly_seasonal_min_months
    having count(*) >= c.anomaly_seasonal_min_months
),

seasonal_offset as (
    select
        s.period,
        s.period_type,
        s.department_id,
        s.indicator_id,
        {{ median('t.offset_value') }} as seasonal_offset
    from seasonal_cells as s
    inner join trailing_levels as t
        on t.department_id = s.department_id and t.indicator_id = s.indicator_id
       and t.period < s.period
       and extract(month from t.period) = extract(month from s.period)
    group by s.period, s.period_type, s.department_id, s.indicator_id
),

seasonal_error_centre as (
    select
        s.period,
        s.period_type,
        s.department_id,
        s.indicator_id,
        count(*) as n_reference,
        {{ median('e.error_value') }} as error_centre
    from seasonal_cells as s
    inner join cells as c
        on c.period = s.period and c.period_type = s.period_type
       and c.department_id = s.department_id and c.indicator_id = s.indicator_id
    inner join year_errors as e
        on e.department_id = s.department_id and e.indicator_id = s.indicator_id
       and e.period < s.period and e.period >= {{ add_months('s.period', '-c.anomaly_history') }}
    group by s.period, s.period_type, s.department_id, s.indicator_id
),

seasonal_spread as (
    select
        ec.period,
        ec.period_type,
        ec.department_id,
        ec.indicator_id,
        max(ec.n_reference) as n_reference,
        max(lv.level_value) + max(so.seasonal_offset) as centre,
        {{ median('abs(e.error_value - ec.error_centre)') }} as mad
    from seasonal_error_centre as ec
    inner join seasonal_offset as so
        on so.period = ec.period and so.period_type = ec.period_type
       and so.department_id = ec.department_id and so.indicator_id = ec.indicator_id
    inner join trailing_levels as lv
        on lv.department_id = ec.department_id and lv.indicator_id = ec.indicator_id and lv.period = ec.period
    inner join cells as c
        on c.period = ec.period and c.period_type = ec.period_type
       and c.department_id = ec.department_id and c.indicator_id = ec.indicator_id
    inner join year_errors as e
        on e.department_id = ec.department_id and e.indicator_id = ec.indicator_id
       and e.period < ec.period and e.period >= {{ add_months('ec.period', '-c.anomaly_history') }}
    group by ec.period, ec.period_type, ec.department_id, ec.indicator_id
),

own as (
    -- one own-reference judgement per cell: seasonal where it can be made
    select
        {{ keys }},
        'seasonal' as kind,
        'own_history' as reference,
        n_reference,
        centre,
        mad
    from seasonal_spread
    union all
    select
        o.period,
        o.period_type,
        o.department_id,
        o.indicator_id,
        'own_history' as kind,
        'own_history' as reference,
        o.n_reference,
        o.centre,
        o.mad
    from own_spread as o
    left join seasonal_spread as s
        on s.period = o.period and s.period_type = o.period_type
       and s.department_id = o.department_id and s.indicator_id = o.indicator_id
    where s.period is null
),

-- sampling noise ---------------------------------------------------------------------
unit_noise as (
    select
        c.period,
        c.period_type,
        c.indicator_id,
        {{ median('c.n_obs * power((c.raw_value - o.centre) / greatest(abs(o.centre), c.city_level), 2)') }}
        / 0.4549 as unit_variance
    from cells as c
    inner join own as o
        on o.period = c.period and o.period_type = c.period_type
       and o.department_id = c.department_id and o.indicator_id = c.indicator_id
    where c.n_obs > 0 and greatest(abs(o.centre), c.city_level) > 0
    group by c.period, c.period_type, c.indicator_id
),

-- peers ------------------------------------------------------------------------------
peer_pairs as (
    select
        c.period,
        c.period_type,
        c.department_id,
        c.indicator_id,
        o.raw_value as other_value,
        coalesce(o.peer_group = c.peer_group, false) as same_group
    from cells as c
    inner join series as o
        on o.period = c.period and o.period_type = c.period_type
       and o.indicator_id = c.indicator_id and o.department_id <> c.department_id
    where c.anomaly_peer
),

peer_counts as (
    select
        {{ keys }},
        sum(case when same_group then 1 else 0 end) as n_group
    from peer_pairs
    group by {{ keys }}
),

peer_reference as (
    -- the peer group when it has min_peers other departments, else the city
    select
        p.period,
        p.period_type,
        p.department_id,
        p.indicator_id,
        p.other_value,
        case when pc.n_group >= c.anomaly_min_peers then 'peer_group' else 'city' end as reference
    from peer_pairs as p
    inner join peer_counts as pc
        on pc.period = p.period and pc.period_type = p.period_type
       and pc.department_id = p.department_id and pc.indicator_id = p.indicator_id
    inner join cells as c
        on c.period = p.period and c.period_type = p.period_type
       and c.department_id = p.department_id and c.indicator_id = p.indicator_id
    where p.same_group or pc.n_group < c.anomaly_min_peers
),

peer_centre as (
    select
        {{ keys }},
        reference,
        count(*) as n_reference,
        {{ median('other_value') }} as centre
    from peer_reference
    group by {{ keys }}, reference
),

peer_spread as (
    select
        r.period,
        r.period_type,
        r.department_id,
        r.indicator_id,
        'peer' as kind,
        r.reference,
        max(pc.n_reference) as n_reference,
        max(pc.centre) as centre,
        {{ median('abs(r.other_value - pc.centre)') }} as mad
    from peer_reference as r
    inner join peer_centre as pc
        on pc.period = r.period and pc.period_type = r.period_type
       and pc.department_id = r.department_id and pc.indicator_id = r.indicator_id
    group by r.period, r.period_type, r.department_id, r.indicator_id, r.reference
),

judged as (
    select * from own
    union all
    select * from peer_spread
),

scaled as (
    select
        c.period,
        c.period_type,
        c.department_id,
        c.indicator_id,
        c.raw_value,
        j.kind,
        j.reference,
        j.n_reference,
        j.centre,
        greatest(
            1.4826 * j.mad, c.anomaly_scale_floor * greatest(abs(j.centre), coalesce(c.city_level, 0))
        ) as robust_scale,
        case when c.ratio_scale is not null and c.n_obs > 0 then
            -- the share p of the centre, kept a case away from 0 and 1 (n_obs + 2 cases)
            power(c.ratio_scale, 2) / c.n_obs
            * least(greatest(j.centre / c.ratio_scale, 1e0 / (c.n_obs + 2)), 1 - 1e0 / (c.n_obs + 2))
            * (1 - least(greatest(j.centre / c.ratio_scale, 1e0 / (c.n_obs + 2)), 1 - 1e0 / (c.n_obs + 2)))
        when c.n_obs > 0
            then coalesce(u.unit_variance, 0) * power(greatest(abs(j.centre), coalesce(c.city_level, 0)), 2) / c.n_obs
        else 0 end as sampling_variance,
        c.direction as indicator_direction,
        -- the range the expected range is kept within: the catalogue's bounds, else
        -- 0..scale for a share of cases, and at least 0 for an indicator with no
        -- negative value in the city in the period
        coalesce(c.bound_lo, case when c.ratio_scale is not null or c.never_negative then 0.0 end) as lowest_possible,
        coalesce(c.bound_hi, c.ratio_scale) as highest_possible,
        c.anomaly_sensitivity as sensitivity,
        c.anomaly_enabled
    from judged as j
    inner join cells as c
        on c.period = j.period and c.period_type = j.period_type
       and c.department_id = j.department_id and c.indicator_id = j.indicator_id
    left join unit_noise as u
        on u.period = j.period and u.period_type = j.period_type and u.indicator_id = j.indicator_id
    where j.n_reference >= case when j.kind = 'peer' then c.anomaly_min_peers else c.anomaly_min_history end
),

with_noise as (
    select
        *,
        greatest(robust_scale, sqrt(sampling_variance)) as scale
    from scaled
)

select
    *,
    (raw_value - centre) / scale as z,
    abs(raw_value - centre) / scale >= sensitivity as beyond
from with_noise
where scale > 0
