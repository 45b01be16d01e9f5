{#- Rounding of scores as a catalogue version says (round, round_mode; docs/methodology.md
    §8a). pipelines/rounding.py computes the same in Python; tests/test_rounding.py
    holds both to R. `x` is repeated in the SQL these macros write: pass a column or a
    cheap expression. `digits` and `mode` are SQL expressions (usually columns). -#}

{#- A score at full precision (10 decimals, today's) when `digits` is NULL, else
    rounded to `digits` decimals in `mode`. -#}
{% macro round_score(x, digits, mode) -%}
    cast(case when {{ digits }} is null then {{ engine_round(x, 10) }}
              else {{ round_to(x, digits, mode) }} end as double)
{%- endmacro %}

{#- `x` rounded to `digits` (0-10) decimals in `mode`: engine, half_up, half_even or r. -#}
{% macro round_to(x, digits, mode) -%}
    (case {{ mode }}
         when 'r' then {{ r_round(x, digits) }}
         when 'half_up' then {{ shown_round(x, digits, "'half_up'") }}
         when 'half_even' then {{ shown_round(x, digits, "'half_even'") }}
         else {{ engine_round(x, digits) }} end)
{%- endmacro %}

{#- R (>= 4.0.0)'s round(x, n): with the sign set aside, of down = floor(x·10ⁿ)/10ⁿ and
    up = ceil(x·10ⁿ)/10ⁿ, the nearer to x measured in doubles (up - x against x - down),
    the even one (floor(x·10ⁿ) odd: up) when those are equal; unrounded when
    log10(2)·(0.5 + logb(x)) + n > 15; n = 0: half to even. Only double arithmetic, so
    the same in every engine with IEEE doubles and an exact power(10, n) for n <= 22.
    (logb is taken as floor(log2(x)), which an engine's log2 could put one off just
    below a power of two; that only matters where the 15-digit test is on its edge.) -#}
{% macro r_round(x, digits) -%}
{%- set ax = 'abs(' ~ x ~ ')' -%}
{%- set p = 'power(10.0, ' ~ digits ~ ')' -%}
{%- set low = 'floor(' ~ ax ~ ' * ' ~ p ~ ')' -%}
{%- set down = '(' ~ low ~ ' / ' ~ p ~ ')' -%}
{%- set up = '(ceil(' ~ ax ~ ' * ' ~ p ~ ') / ' ~ p ~ ')' -%}
{%- set frac = '(' ~ ax ~ ' - floor(' ~ ax ~ '))' -%}
    (sign({{ x }}) * case
        when {{ x }} = 0 then 0.0
        when {{ digits }} = 0 then
            case when {{ frac }} > 0.5 then floor({{ ax }}) + 1
                 when {{ frac }} < 0.5 then floor({{ ax }})
                 else floor({{ ax }}) + ({{ is_odd('floor(' ~ ax ~ ')') }}) end
        when log10(2.0) * (0.5 + floor(log2({{ ax }}))) + {{ digits }} > 15 then {{ ax }}
        when {{ up }} - {{ ax }} < {{ ax }} - {{ down }}
          or ({{ up }} - {{ ax }} = {{ ax }} - {{ down }} and {{ is_odd(low) }} = 1) then {{ up }}
        else {{ down }} end)
{%- endmacro %}

{#- 1 if the whole number `n` (a double) is odd, else 0. -#}
{% macro is_odd(n) -%}
    cast({{ n }} - 2 * floor({{ n }} / 2) as integer)
{%- endmacro %}

{#- `x` as shown (15 significant digits, as Excel shows it) rounded to `digits`
    decimals, ties away from zero ('half_up') or to the even digit ('half_even'). -#}
{% macro shown_round(x, digits, mode) -%}
    {{ return(adapter.dispatch('shown_round', 'govperf')(x, digits, mode)) }}
{%- endmacro %}

{#- DuckDB: from the 15 significant digits printf('%.14e') writes, in integers: the
    mantissa m (15 digits) and exponent e; k = 14 - e - digits digits are dropped
    (none: the shown value; 16 or more: 0); q the digits kept, rem those dropped. -#}
{% macro duckdb__shown_round(x, digits, mode) -%}
{%- set text = "printf('%.14e', abs(" ~ x ~ "))" -%}
{%- set mantissa = "(substr(" ~ text ~ ", 1, 1) || substr(" ~ text ~ ", 3, 14))" -%}
{%- set dropped = "(14 - cast(substr(" ~ text ~ ", 18) as integer) - " ~ digits ~ ")" -%}
{%- set kept = "(case when " ~ dropped ~ " >= 15 then 0 else cast(substr(" ~ mantissa ~ ", 1, 15 - "
    ~ dropped ~ ") as bigint) end)" -%}
{%- set rest = "cast('0' || substr(" ~ mantissa ~ ", greatest(16 - " ~ dropped ~ ", 1)) as bigint)" -%}
{%- set half = "cast(5 * power(10, least(" ~ dropped ~ ", 15) - 1) as bigint)" -%}
    (sign({{ x }}) * case
        when {{ x }} = 0 then 0.0
        when {{ dropped }} <= 0 then cast({{ text }} as double)
        when {{ dropped }} > 15 then 0.0
        else ({{ kept }} + case when {{ rest }} > {{ half }}
                                  or ({{ rest }} = {{ half }}
                                      and ({{ mode }} = 'half_up' or {{ kept }} % 2 = 1)) then 1 else 0 end)
             / power(10.0, {{ digits }}) end)
{%- endmacro %}

{#- Portable: the engine's cast to decimal(38, 15) as the value shown, rounded in
    decimal at a constant scale per branch (`digits` is 0-10). -#}
{% macro default__shown_round(x, digits, mode) -%}
{%- set d = 'cast(' ~ x ~ ' as decimal(38, 15))' -%}
    cast(case {{ digits }}
        {%- for n in range(11) %}
        when {{ n }} then
            case when {{ mode }} = 'half_even'
                  and abs({{ d }} - trunc({{ d }}, {{ n }})) = {{ '0.' ~ '0' * n ~ '5' }}
                  and {{ is_odd('trunc(abs(' ~ d ~ ') * ' ~ 10 ** n ~ ', 0)') }} = 0
                 then trunc({{ d }}, {{ n }})
                 else round({{ d }}, {{ n }}) end
        {%- endfor %}
    end as double)
{%- endmacro %}

{#- Spark: DuckDB's own algorithm on doubles, so that both engines round every double the
    same way. Spark's printf('%.14e') (Java's Formatter) writes the same text as DuckDB's for
    all but double-rounding cases (a 16-17 digit shortest form ending in 5). -#}
{% macro spark__shown_round(x, digits, mode) -%}
    {{ duckdb__shown_round(x, digits, mode) }}
{%- endmacro %}

{#- The engine's round(x, n) with DuckDB's meaning on every engine: a double rounded on
    its exact binary value, halves away from zero (round(0.285, 2) = 0.28: the double
    0.285 is 0.28499999999999998...), n any integer expression (a column too). -#}
{% macro engine_round(x, digits) -%}
    {{ return(adapter.dispatch('engine_round', 'govperf')(x, digits)) }}
{%- endmacro %}
{% macro default__engine_round(x, digits) -%}
    round({{ x }}, {{ digits }})
{%- endmacro %}
{#- Spark's round(x, n) rounds the shortest decimal text of x half up (round(0.285, 2) =
    0.29) and wants a constant n. Here y = x·10ⁿ is rounded with round(y, 0), which agrees
    with rounding y's exact value (a double and its shortest text lie on the same side of
    k + 0.5, itself a double); y is x·10ⁿ rounded to a double, so when it lands exactly
    on a half, the product's rounding error (Dekker's two-product, exact in doubles)
    says which side the exact x·10ⁿ lies on. The whole number k is read back as the text
    k·10⁻ⁿ, the double nearest it (k / 10ⁿ is not, past 10²²). x is bound once through a lambda. Checked
    against DuckDB's round on 25,005 values and scales (ties k/40000 included): equal. -#}
{% macro spark__engine_round(x, digits) -%}
{%- set y = '(r_.x * r_.p)' -%}
{%- set split = '134217729e0' -%}
{%- set x_hi = '((' ~ split ~ ' * r_.x) - ((' ~ split ~ ' * r_.x) - r_.x))' -%}
{%- set x_lo = '(r_.x - ' ~ x_hi ~ ')' -%}
{%- set p_hi = '((' ~ split ~ ' * r_.p) - ((' ~ split ~ ' * r_.p) - r_.p))' -%}
{%- set p_lo = '(r_.p - ' ~ p_hi ~ ')' -%}
{%- set error = '((((' ~ x_hi ~ ' * ' ~ p_hi ~ ' - ' ~ y ~ ') + ' ~ x_hi ~ ' * ' ~ p_lo ~ ' + ' ~ x_lo ~ ' * ' ~ p_hi
    ~ ') + ' ~ x_lo ~ ' * ' ~ p_lo ~ '))' -%}
    element_at(transform(array(named_struct('x', cast({{ x }} as double), 'p', power(10, {{ digits }}),
                                            'n', cast({{ digits }} as int))), r_ ->
        case when abs({{ y }}) >= 4503599627370496e0 then r_.x {# 2^52: x·10ⁿ is whole already #}
             else cast(concat(cast(cast(
                  case when abs({{ y }}) - floor(abs({{ y }})) = 0.5 and sign({{ y }}) * {{ error }} < 0
                       then sign(r_.x) * floor(abs({{ y }}))
                       else round({{ y }}, 0) end as bigint) as string), 'e', cast(-r_.n as string)) as double) end), 1)
{%- endmacro %}
