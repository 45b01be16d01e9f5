"""The rule by which two engines' marts are equal (pipelines/transform/compare_engines.py):
exact, except a double one unit apart in its 12th significant digit, which is counted and
listed; anything else differs. Real DuckDB files, the CLI as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.transform.compare_engines import TWELVE_DIGIT_COLUMNS, compare_warehouses, within_last_stored_digit

ROWS = [("d1", 1, 0.0123456789012, 85.1234), ("d2", 2, 0.5, 70.0), ("d3", 3, None, 60.5)]


def _warehouse(path, rows, table="fct_anomalies"):
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(f"create table marts.{table} (department_id varchar, rank integer, p_value double, score double)")
    con.executemany(f"insert into marts.{table} values (?, ?, ?, ?)", rows)
    con.close()
    return path


def test_equal_marts_are_not_reported(tmp_path):
    first, second = _warehouse(tmp_path / "a.duckdb", ROWS), _warehouse(tmp_path / "b.duckdb", ROWS[::-1])
    assert compare_warehouses(first, second) == {}


def test_a_p_value_one_unit_apart_in_its_last_stored_digit_is_equal_and_listed(tmp_path):
    changed = [("d1", 1, 0.0123456789013, 85.1234), *ROWS[1:]]
    first, second = _warehouse(tmp_path / "a.duckdb", ROWS), _warehouse(tmp_path / "b.duckdb", changed)
    found = compare_warehouses(first, second)["fct_anomalies"]
    assert found["equal"] is True
    assert [pair["p_value"] for pair in found["within_last_digit"]] == [(0.0123456789012, 0.0123456789013)]
    cli = subprocess.run(
        [sys.executable, "-m", "pipelines.transform.compare_engines", str(first), str(second)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "1 rows within one unit" in cli.stdout and "0 marts differ" in cli.stdout


@pytest.mark.parametrize(
    "changed",
    [
        ("d1", 1, 0.0123456789014, 85.1234),  # two units in the last stored digit
        ("d1", 1, 0.0123456789012, 85.1235),  # a score, in its 4th decimal
        ("d1", 2, 0.0123456789012, 85.1234),  # a rank
        ("d1", 1, None, 85.1234),  # a value against none
        ("d1", 1, 0.0123456789012, 85.1234000000001),  # a column stored at fixed decimals, in its 13th digit
    ],
)
def test_any_other_difference_makes_the_mart_differ(tmp_path, changed):
    first = _warehouse(tmp_path / "a.duckdb", ROWS)
    second = _warehouse(tmp_path / "b.duckdb", [changed, *ROWS[1:]])
    found = compare_warehouses(first, second)["fct_anomalies"]
    assert found["equal"] is False and found["only_first"] == found["only_second"] == 1
    cli = subprocess.run(
        [sys.executable, "-m", "pipelines.transform.compare_engines", str(first), str(second)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 1 and "1 marts differ" in cli.stdout


def test_a_missing_row_makes_the_mart_differ(tmp_path):
    first, second = _warehouse(tmp_path / "a.duckdb", ROWS), _warehouse(tmp_path / "b.duckdb", ROWS[:2])
    found = compare_warehouses(first, second)["fct_anomalies"]
    assert found["equal"] is False and (found["only_first"], found["only_second"]) == (1, 0)


def test_the_last_stored_digit_scales_with_the_smaller_value():
    assert within_last_stored_digit(1.23456789012e-9, 1.23456789013e-9)
    assert within_last_stored_digit(8.33915399571e-05, 8.3391539957e-05)  # seen on the sample: 1e-16 apart
    assert within_last_stored_digit(3.0000000000000002e-18, 3e-18)  # one decimal, two neighbouring doubles
    assert not within_last_stored_digit(1.23456789012e-9, 1.23456789014e-9)
    assert not within_last_stored_digit(9.9999999999e-5, 1e-4)  # ten units of the smaller's last digit
    assert not within_last_stored_digit(-1e-20, 1e-20) and not within_last_stored_digit(0.0, 1e-300)
    assert within_last_stored_digit(1.2e-315, 1.2e-315) and not within_last_stored_digit(1.2e-315, 1.3e-315)
    assert within_last_stored_digit(None, None) and not within_last_stored_digit(0.5, None)
    assert within_last_stored_digit(float("nan"), float("nan")) and not within_last_stored_digit(float("nan"), 0.5)


def test_a_mart_without_twelve_digit_columns_gets_no_allowance(tmp_path):
    changed = [("d1", 1, 0.0123456789013, 85.1234), *ROWS[1:]]
    first = _warehouse(tmp_path / "a.duckdb", ROWS, table="fct_rankings")
    second = _warehouse(tmp_path / "b.duckdb", changed, table="fct_rankings")
    assert compare_warehouses(first, second)["fct_rankings"]["equal"] is False


def test_the_allowance_covers_exactly_the_columns_the_marts_store_through_stored_value():
    stored = {}
    for model in (Path(__file__).parents[1] / "dbt_project" / "models" / "marts").glob("*.sql"):
        text = model.read_text(encoding="utf-8")
        for column in re.findall(r"stored_value\((?:[^{}]|\{[^{}]*\})*?\)\s*\}\}\s*as\s+(\w+)", text):
            stored.setdefault(model.stem, set()).add(column)
    assert stored == TWELVE_DIGIT_COLUMNS
