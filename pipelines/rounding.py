"""Rounding a score to n decimals, in the modes a catalogue version can name
(`round_mode`, docs/methodology.md §8a). The dbt macro `round_score`
(dbt_project/macros/rounding.sql) computes the same in SQL; tests compare both
with R itself.

- `half_up` (四舍五入, as Excel): the value as shown, 15 significant digits, rounded
  half away from zero. 2.675 is shown as 2.675 and becomes 2.68; 1.005 becomes 1.01.
- `half_even`: the value as shown, 15 significant digits, ties to the even digit
  (banker's rounding): 2.665 -> 2.66, 2.675 -> 2.68, 0.125 -> 0.12.
- `r`: R's round(x, n) for n >= 1 (R >= 4.0.0): of the two doubles nearest to x
  with n decimals, down = floor(x·10ⁿ)/10ⁿ and up = ceil(x·10ⁿ)/10ⁿ, the one nearer
  to x as measured in doubles (up - x against x - down), the even one when the two
  distances are equal; the sign set aside first. n = 0 rounds half to even. So
  round(2.675, 2) = 2.67 (the double is 2.67499999...) and round(0.125, 2) = 0.12
  (an exact tie, to even), round(5.015, 2) = 5.02.
- `engine`: the SQL engine's own round() on the double (DuckDB: half away from zero
  on the double product x·10ⁿ); kept as the default so that nothing already
  published moves. In Python it is taken as `half_up` on the binary value.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

MODES = ("engine", "half_up", "half_even", "r")
_DBL_DIG = 15  # decimal digits a double always holds (C's DBL_DIG)
_LOG10_2 = math.log10(2)


def shown(x: float) -> Decimal:
    """The decimal a person reads for x: its 15 significant digits (as Excel shows it)."""
    return Decimal(format(x, f".{_DBL_DIG}g"))


def round_score(x: float | None, digits: int, mode: str = "half_up") -> float | None:
    """x rounded to `digits` decimals (0 or more) in `mode`; None and non-finite pass through."""
    if x is None or not math.isfinite(x):
        return x
    if digits < 0:
        raise ValueError(f"digits must be 0 or more, not {digits}")
    if mode in ("half_up", "half_even"):
        rule = ROUND_HALF_UP if mode == "half_up" else ROUND_HALF_EVEN
        value = shown(x)
        if value.as_tuple().exponent >= -digits:  # no digit shown beyond those kept (1e20)
            return float(value)
        return float(value.quantize(Decimal(1).scaleb(-digits), rounding=rule))
    if mode == "r":
        return r_round(x, digits)
    if mode == "engine":
        return float(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    raise ValueError(f"unknown rounding mode {mode!r}; one of {', '.join(MODES)}")


def r_round(x: float, digits: int) -> float:
    """R (>= 4.0.0)'s round(x, digits) for digits >= 0, in double arithmetic as R does it."""
    if x == 0 or not math.isfinite(x):
        return x
    if digits == 0:
        return float(round(x))  # Python's round to an integer is half to even, as nearbyint
    sign = -1.0 if x < 0 else 1.0
    x = abs(x)
    # R estimates log10(x) from the binary exponent; past 15 digits nothing is rounded.
    exponent = math.frexp(x)[1] - 1  # logb(x)
    if _LOG10_2 * (0.5 + exponent) + digits > _DBL_DIG:
        return sign * x
    scale = 10.0**digits  # exact for digits <= 22
    scaled = x * scale
    low = math.floor(scaled)
    down, up = low / scale, math.ceil(scaled) / scale
    to_up, to_down = up - x, x - down
    nearer_up = to_up < to_down or (to_up == to_down and low % 2 == 1)
    return sign * (up if nearer_up else down)
