"""The rounding modes a catalogue version can name (docs/methodology.md §8a), in
Python (pipelines/rounding.py) and in SQL (dbt_project/macros/rounding.sql), on
hand-checked awkward values and against R itself.

The hand-checked values: 2.675 is stored as 2.67499999999999982236431605997495353221893310546875,
0.125 and 0.375 and x.125 are exact binary fractions (true ties), 1.005 is stored as
1.00499999999999989341858963598497211933135986328125, 2.665 as
2.66500000000000003552713678800500929355621337890625 (above the tie, yet R gives 2.66:
R compares up - x with x - down in doubles, and both come out equal), 0.285 as
0.28499999999999997557509345824... .
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.rounding import r_round, round_score, shown

R_HELP = "Rscript is missing: install Debian's r-base-core (apt-get install -y r-base-core; .ci/run does)"

# (value, digits, r, half_up, half_even); worked by hand from the stored doubles above
# (r: nearer of floor/ceil(x·10ⁿ)/10ⁿ in doubles, exact ties to even; half_*: on the
# value as shown to 15 significant digits).
CASES = [
    (2.675, 2, 2.67, 2.68, 2.68),
    (-2.675, 2, -2.67, -2.68, -2.68),
    (0.125, 2, 0.12, 0.13, 0.12),
    (0.375, 2, 0.38, 0.38, 0.38),
    (1.005, 2, 1.0, 1.01, 1.0),
    (5.015, 2, 5.02, 5.02, 5.02),
    (2.665, 2, 2.66, 2.67, 2.66),
    (0.285, 2, 0.28, 0.29, 0.28),
    (-0.005, 2, -0.0, -0.01, -0.0),
    (-2.5, 0, -2.0, -3.0, -2.0),
    (0.5, 0, 0.0, 1.0, 0.0),
    (1.5, 0, 2.0, 2.0, 2.0),
    (2.5, 0, 2.0, 3.0, 2.0),
    (3.5, 0, 4.0, 4.0, 4.0),
    (123456789.125, 2, 123456789.12, 123456789.13, 123456789.12),
    (-1234567.125, 2, -1234567.12, -1234567.13, -1234567.12),
    (1e20, 2, 1e20, 1e20, 1e20),
    (84.994951, 2, 84.99, 84.99, 84.99),
    (0.0, 2, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("value", "digits", "r", "half_up", "half_even"), CASES)
def test_each_mode_on_awkward_values(value: float, digits: int, r: float, half_up: float, half_even: float) -> None:
    assert round_score(value, digits, "r") == r
    assert round_score(value, digits, "half_up") == half_up
    assert round_score(value, digits, "half_even") == half_even
    # the sign of a negative value rounded to zero is kept, as R prints -0
    assert math.copysign(1, round_score(value, digits, "r")) == math.copysign(1, r)


def test_engine_mode_is_half_up_on_the_binary_value() -> None:
    """`engine` (the default) is what DuckDB's round() did before the setting existed."""
    assert round_score(2.675, 2, "engine") == 2.67  # 267.4999...
    assert round_score(1.005, 2, "engine") == 1.0
    assert round_score(0.125, 2, "engine") == 0.13  # an exact tie, away from zero
    with duckdb.connect() as con:
        for value, digits, *_ in CASES:
            (sql,) = con.execute("select round(?::double, ?)", [value, digits]).fetchone()
            assert round_score(value, digits, "engine") == sql, value


def test_shown_value_has_15_significant_digits() -> None:
    assert shown(2.675) == Decimal("2.675")
    assert shown(0.1 + 0.2) == Decimal("0.3")
    assert shown(1 / 3) == Decimal("0.333333333333333")
    assert round_score(1e30, 2, "half_up") == 1e30


def test_none_and_errors() -> None:
    assert round_score(None, 2, "r") is None
    assert math.isnan(round_score(math.nan, 2, "half_up"))
    with pytest.raises(ValueError, match="unknown rounding mode"):
        round_score(1.0, 2, "banker")
    with pytest.raises(ValueError, match="0 or more"):
        round_score(1.0, -1, "r")


def rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(R_HELP)
        pytest.skip(R_HELP)
    return found


def r_rounds(values: list[float], digits: int, work: Path) -> list[float]:
    """R's round(values, digits), each result written with 17 significant digits."""
    source = work / f"x{digits}.txt"
    source.write_text("\n".join(repr(v) for v in values))
    out = subprocess.run(
        [
            rscript(),
            "-e",
            f"x <- scan('{source}', quiet = TRUE); cat(sprintf('%.17g', round(x, {digits})), sep = '\\n')",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert len(out) == len(values)
    return [float(v) for v in out]


def random_doubles(n: int) -> list[float]:
    """Many values ending in 5 at the 3rd (or n+1th) decimal, exact binary ties, and
    plain random doubles, of both signs and of many magnitudes."""
    rng = random.Random(20250117)
    values = [v for v, *_ in CASES]
    while len(values) < n:
        kind = rng.randrange(4)
        if kind == 0:  # x.xx5, rarely exact in binary
            values.append(rng.randrange(-(10**6), 10**6) / 100 + rng.choice([0.005, -0.005]))
        elif kind == 1:  # exact binary ties at 2 decimals (multiples of 1/8)
            values.append(rng.randrange(-(10**5), 10**5) / 8)
        elif kind == 2:  # scores
            values.append(rng.uniform(0, 100))
        else:
            values.append(rng.uniform(-1, 1) * 10 ** rng.randrange(-8, 14))
    return values[:n]


def test_python_matches_r_on_awkward_values(tmp_path: Path) -> None:
    values = [v for v, *_ in CASES]
    for digits in (0, 2):
        assert [r_round(v, digits) for v in values] == r_rounds(values, digits, tmp_path)


@pytest.mark.slow
def test_sql_and_python_match_r_on_10000_random_doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The macro as dbt compiles it for DuckDB (adapter.dispatch included), run on
    10,000 doubles, against R's round() and pipelines.rounding."""
    values = random_doubles(10_000)
    digits_list = (0, 1, 2, 3, 4)
    sql = compiled_rounding_query(tmp_path, monkeypatch, digits_list)
    with duckdb.connect() as con:
        con.execute("create table v (i integer, x double)")
        con.executemany("insert into v values (?, ?)", list(enumerate(values)))
        rows = con.execute(sql).fetchall()
    by_digits: dict[int, list[tuple]] = {d: [] for d in digits_list}
    for row in rows:
        by_digits[row[1]].append(row)
    for digits in digits_list:
        in_r = r_rounds(values, digits, tmp_path)
        got = sorted(by_digits[digits])
        for (i, _d, sql_r, sql_up, sql_even), expected in zip(got, in_r, strict=True):
            x = values[i]
            assert sql_r == expected, f"SQL r: round({x!r}, {digits}) gave {sql_r!r}, R {expected!r}"
            assert r_round(x, digits) == expected, f"Python r: round({x!r}, {digits})"
            assert sql_up == round_score(x, digits, "half_up"), f"half_up {x!r} {digits}"
            assert sql_even == round_score(x, digits, "half_even"), f"half_even {x!r} {digits}"


def compiled_rounding_query(work: Path, monkeypatch: pytest.MonkeyPatch, digits_list: tuple[int, ...]) -> str:
    """The three modes over table v(i, x), compiled by dbt from the project's macros."""
    from pipelines.settings import DBT_PROJECT_DIR
    from pipelines.transform.project import dbt_environment, dbt_executable

    home = work / "home"
    (home / "warehouse").mkdir(parents=True)
    (home / "lake").mkdir(parents=True)
    monkeypatch.setenv("GOVPERF_HOME", str(home))
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
        monkeypatch.delenv(derived, raising=False)
    env = {**os.environ, **dbt_environment()}
    selects = [
        f"select i, {d} as digits, {{{{ round_to('x', {d}, \"'r'\") }}}} as r,"
        f" {{{{ round_to('x', {d}, \"'half_up'\") }}}} as half_up,"
        f" {{{{ round_to('x', {d}, \"'half_even'\") }}}} as half_even from v"
        for d in digits_list
    ]
    result = subprocess.run(
        [
            dbt_executable(),
            "compile",
            "--quiet",
            "--inline",
            " union all ".join(selects),
            "--profiles-dir",
            ".",
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout
