{#- Tail probabilities for the screens (fct_anomalies), in plain portable SQL: exp,
    sqrt, power. docs/methodology.md states the approximations and their accuracy. -#}

{#- P(Z <= z) for a standard normal Z. Abramowitz & Stegun 26.2.17 for the tail
    beyond |z| (absolute error below 7.5e-8, and relative accuracy far out, where the
    screens' p-values live). Pass a column or a simple expression: it is repeated. -#}
{% macro normal_cdf(z) -%}
    (case when {{ z }} >= 0 then 1 - {{ _normal_upper_tail(z) }}
          else {{ _normal_upper_tail('(-' ~ z ~ ')') }} end)
{%- endmacro %}

{% macro _normal_upper_tail(x) -%}
    {%- set t = '(1.0 / (1.0 + 0.2316419 * abs(' ~ x ~ ')))' -%}
    (exp(-0.5 * {{ x }} * {{ x }}) * 0.3989422804014327
     * {{ t }} * (0.319381530 + {{ t }} * (-0.356563782 + {{ t }} * (1.781477937
     + {{ t }} * (-1.821255978 + {{ t }} * 1.330274429)))))
{%- endmacro %}

{#- The normal deviate z with P(X >= observed) ~ normal_cdf(z), for a count X of the
    given mean and variance. X is scaled to a Poisson (quasi-Poisson: X / phi with
    phi = variance / mean) and its tail taken from the gamma identity P(Poisson(m) >= k)
    = P(Gamma(k) <= m) with the Wilson-Hilferty cube root (Byar's approximation):
    within a few per cent of the exact Poisson and binomial tails, conservative for the
    beta-binomial. Undefined (NULL) for observed <= 0: its tail is 1. -#}
{% macro count_tail_z(observed, mean, variance) -%}
    (case when {{ observed }} > 0 and {{ mean }} > 0 and {{ variance }} > 0 then
        (power(1e0 * {{ mean }} / {{ observed }}, 1e0 / 3) - 1
         + 1e0 / (9e0 * {{ observed }} * {{ mean }} / {{ variance }}))
        * 3 * sqrt(1e0 * {{ observed }} * {{ mean }} / {{ variance }})
    end)
{%- endmacro %}

{#- A term of a sum that must come out the same whatever order the engine adds in
    (parallel float sums differ in the last bits, and a stored p-value with them):
    fixed-point, 18 decimals; a term below 1e-18 counts as 0. -#}
{% macro exact_term(expression) -%}
    cast({{ expression }} as decimal(38, 18))
{%- endmacro %}

{#- One row per whole number from start to stop (inclusive), as a set-returning
    expression for a select list: `select t.*, integer_range('t.a', 't.b') as k from t`. -#}
{% macro integer_range(start, stop) -%}
    {{ return(adapter.dispatch('integer_range', 'govperf')(start, stop)) }}
{%- endmacro %}
{% macro default__integer_range(start, stop) -%}
    explode(sequence(cast({{ start }} as bigint), cast({{ stop }} as bigint)))
{%- endmacro %}
{% macro duckdb__integer_range(start, stop) -%}
    unnest(generate_series(cast({{ start }} as bigint), cast({{ stop }} as bigint)))
{%- endmacro %}

{#- ln Gamma(x) for x > 0. Engines without lgamma: Stirling's series at x + 6, shifted
    back by the recurrence (absolute error below 1e-10). Pass a column: it is repeated. -#}
{% macro log_gamma(x) -%}
    {{ return(adapter.dispatch('log_gamma', 'govperf')(x)) }}
{%- endmacro %}
{% macro default__log_gamma(x) -%}
    {%- set z = '(' ~ x ~ ' + 6.0)' -%}
    (({{ z }} - 0.5) * ln({{ z }}) - {{ z }} + 0.9189385332046728
     + 1.0 / (12.0 * {{ z }}) - 1.0 / (360.0 * power({{ z }}, 3)) + 1.0 / (1260.0 * power({{ z }}, 5))
     - ln({{ x }} * ({{ x }} + 1) * ({{ x }} + 2) * ({{ x }} + 3) * ({{ x }} + 4) * ({{ x }} + 5)))
{%- endmacro %}
{% macro duckdb__log_gamma(x) -%}
    lgamma({{ x }})
{%- endmacro %}
{#- Spark has no lgamma: Stirling's series to z^-9 at z = x + 20, in doubles (the default's
    integer x + 6.0 is a DECIMAL in Spark, whose divisions keep 6 decimals), shifted back by
    the recurrence; relative error near double precision. x is bound once by a lambda. -#}
{% macro spark__log_gamma(x) -%}
    element_at(transform(array(cast({{ x }} as double)), lg_ -> (
        ((lg_ + 20e0) - 0.5e0) * ln(lg_ + 20e0) - (lg_ + 20e0) + 0.9189385332046728e0
        + 1e0 / (12e0 * (lg_ + 20e0)) - 1e0 / (360e0 * power(lg_ + 20e0, 3))
        + 1e0 / (1260e0 * power(lg_ + 20e0, 5)) - 1e0 / (1680e0 * power(lg_ + 20e0, 7))
        + 1e0 / (1188e0 * power(lg_ + 20e0, 9))
        - ln({% for i in range(20) %}(lg_ + {{ i }}e0){% if not loop.last %} * {% endif %}{% endfor %}))), 1)
{%- endmacro %}

{#- ln P(X = k) for X beta-binomial with n trials, mean share p and intraclass
    correlation rho (binomial when rho is 0): columns n, k, p, rho. -#}
{% macro log_beta_binomial_pmf(n, k, p, rho) -%}
    ({{ log_gamma(n ~ ' + 1') }} - {{ log_gamma(k ~ ' + 1') }} - {{ log_gamma(n ~ ' - ' ~ k ~ ' + 1') }}
     + case when {{ rho }} < 1e-9 then {{ k }} * ln({{ p }}) + ({{ n }} - {{ k }}) * ln(1 - {{ p }})
            else {{ log_gamma(k ~ ' + ' ~ p ~ ' * (1 / ' ~ rho ~ ' - 1)') }}
                 + {{ log_gamma(n ~ ' - ' ~ k ~ ' + (1 - ' ~ p ~ ') * (1 / ' ~ rho ~ ' - 1)') }}
                 - {{ log_gamma(n ~ ' + 1 / ' ~ rho ~ ' - 1') }}
                 - {{ log_gamma(p ~ ' * (1 / ' ~ rho ~ ' - 1)') }}
                 - {{ log_gamma('(1 - ' ~ p ~ ') * (1 / ' ~ rho ~ ' - 1)') }}
                 + {{ log_gamma('1 / ' ~ rho ~ ' - 1') }}
       end)
{%- endmacro %}

{#- The beta-binomial's mean share p and intraclass correlation rho of a reference
    set of departments, from its sums (relation with ref_n = sum n, ref_x = sum x,
    ref_xx = sum x^2/n, ref_nn = sum n^2, k departments): p with half a case added (a
    share of 0 still leaves room for chance); rho by the method of moments (ANOVA
    estimator) from the between-department (msb, about the pooled share) and
    within-department (msw) mean squares and the average size n0, kept in 0..0.99;
    0 when the reference shows no spread at all (every count 0, say). -#}
{% macro _beta_binomial_moments(relation) -%}
    select
        with_p.*,
        case when msb + (n0 - 1) * msw > 0
             then least(0.99, greatest(0.0, (msb - msw) / (msb + (n0 - 1) * msw))) else 0.0 end as rho
    from (
        select
            {{ relation }}.*,
            (ref_x + 0.5e0) / (ref_n + 1e0) as p,
            case when k >= 2 and ref_n > 0 then (ref_xx - 1e0 * ref_x * ref_x / ref_n) / (k - 1) end as msb,
            case when ref_n > k then cast(ref_x - ref_xx as double) / (ref_n - k) end as msw,
            case when k >= 2 then (ref_n - ref_nn / ref_n) / (k - 1) end as n0
        from {{ relation }}
    ) as with_p
{%- endmacro %}

{#- A setting of the rating-gaming screens (dbt_project.yml vars.rating_screens),
    checked when a model is compiled: a missing or out-of-range value stops the build
    with its name, never a silent default. -#}
{% macro screen_setting(name) -%}
    {%- set ranges = {
        'fdr': [0.0001, 0.5],
        'min_peers': [2, 1000],
        'mismatch_negative_from': [0.5, 0.9999],
        'min_high_rated_comments': [1, 100000],
        'min_ratings': [1, 100000],
        'fast_rating_seconds': [1, 3600],
        'burst_window_minutes': [1, 1440],
        'min_timed_ratings': [1, 100000],
        'copied_min_chars': [1, 1000],
        'min_flagged_count': [1, 100000],
        'copied_min_cases': [2, 100000],
    } -%}
    {%- set settings = var('rating_screens', {}) -%}
    {%- if name not in ranges -%}
        {{ exceptions.raise_compiler_error("screen_setting: unknown setting " ~ name) }}
    {%- endif -%}
    {%- if settings is not mapping or name not in settings -%}
        {{ exceptions.raise_compiler_error("dbt_project.yml vars.rating_screens." ~ name ~ " is missing") }}
    {%- endif -%}
    {%- set value = settings[name] -%}
    {%- if value is not number or value is sameas true or value is sameas false
           or value < ranges[name][0] or value > ranges[name][1] -%}
        {{ exceptions.raise_compiler_error("dbt_project.yml vars.rating_screens." ~ name ~ " = " ~ value
            ~ ": must be a number from " ~ ranges[name][0] ~ " to " ~ ranges[name][1]) }}
    {%- endif -%}
    {{- value -}}
{%- endmacro %}
