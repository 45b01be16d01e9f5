"""The rule by which two engines' marts are equal (pipelines/transform/compare_engines.py):
exact, except a double one unit apart in its 12th significant digit, which is counted and
listed; anything else differs. Real DuckDB files, the CLI as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from pipelines.transform.compare_engines import compare_warehouses, within_last_stored_digit

ROWS = [("d1", 1, 0.0123456789012, 85.1234), ("d2", 2, 0.5, 70.0), ("d3", 3, None, 60.5)]


def _warehouse(path, rows):
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.fct_anomalies (department_id varchar, rank integer, p_value double, score double)")
    con.executemany("insert into marts.fct_anomalies values (?, ?, ?, ?)", rows)
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


def test_the_last_stored_digit_scales_with_the_value():
    assert within_last_stored_digit(1.23456789012e-9, 1.23456789013e-9)
    assert not within_last_stored_digit(1.23456789012e-9, 1.23456789014e-9)
    assert within_last_stored_digit(None, None) and not within_last_stored_digit(0.5, None)
    assert not within_last_stored_digit(float("nan"), 0.5)
