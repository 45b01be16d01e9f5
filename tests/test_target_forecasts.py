"""The forecasts' lake step (pipelines/analytics/target_forecasts.py), their bulletin
findings and their settings, on a real DuckDB warehouse with marts written here.

The pipeline end to end (Dagster assets, dbt's mart, the edition) is
tests/test_target_forecasts_run.py; the method itself is tests/test_forecast.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.analytics import target_forecasts as tf
from pipelines.analytics.forecast import forecast_attainment

MONTHS = [dt.date(2025, m, 1) for m in range(1, 10)]  # 2025-01..2025-09


def series(department: str, indicator: str, level: float, slope: float, seed: int) -> list[float]:
    noise = np.random.default_rng(seed).normal(0, 1.0, len(MONTHS))
    return [min(100.0, level + slope * i + e) for i, e in enumerate(noise)]


def make_warehouse(path: Path, values: dict[tuple[str, str], list[float | None]]) -> None:
    """marts.fct_indicator_values, dim_indicator (two catalogue versions: the target of
    `rate` rises from July) and dim_department (D3 merged away at the end of July)."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_indicator_values (department_id varchar, indicator_id varchar, period date,"
        " period_type varchar, raw_value double)"
    )
    for (department, indicator), ys in values.items():
        for month, y in zip(MONTHS, ys):
            con.execute(
                "insert into marts.fct_indicator_values values (?, ?, ?, 'month', ?)", [department, indicator, month, y]
            )
            # a quarter's value: never read by the monthly forecasts
            con.execute(
                "insert into marts.fct_indicator_values values (?, ?, ?, 'quarter', 0)", [department, indicator, month]
            )
    con.execute(
        "create table marts.dim_indicator (indicator_id varchar, catalogue_version varchar, target double,"
        " direction varchar, bound_lo double, bound_hi double, effective_from date, effective_to date)"
    )
    con.execute(
        """insert into marts.dim_indicator values
           ('rate', 'v1', 90, 'higher', 0, 100, '2025-01-01', '2025-06-30'),
           ('rate', 'v2', 95, 'higher', 0, 100, '2025-07-01', '9999-12-31'),
           ('hours', 'v1', null, 'lower', null, null, '2025-01-01', '2025-06-30'),
           ('hours', 'v2', null, 'lower', null, null, '2025-07-01', '9999-12-31')"""
    )
    con.execute("create table marts.dim_department (department_id varchar, valid_from date, valid_to date)")
    con.execute(
        "insert into marts.dim_department values ('D1', '2020-01-01', null), ('D2', '2020-01-01', null),"
        " ('D3', '2020-01-01', '2025-07-31')"
    )
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "govperf.duckdb"
    values = {
        ("D1", "rate"): series("D1", "rate", 80, 1.0, 1),
        ("D2", "rate"): series("D2", "rate", 96, -0.8, 2),
        ("D3", "rate"): series("D3", "rate", 90, 0.0, 3),
        ("D1", "hours"): series("D1", "hours", 20, 0.0, 4),
    }
    values[("D2", "rate")][2] = None  # a month not reported: a gap
    make_warehouse(path, values)
    return path


def forecast(warehouse: Path, lake: Path, months=MONTHS) -> tf.Forecasted:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return tf.forecast_months(con, lake, months)
    finally:
        con.close()


def read_month(lake: Path, month: dt.date) -> pd.DataFrame:
    return pq.read_table(tf.month_file(lake, month)).to_pandas()


def test_each_month_is_forecast_from_its_own_past_and_target(warehouse: Path, tmp_path: Path):
    lake = tmp_path / "lake"
    done = forecast(warehouse, lake)
    assert done.months_forecast == MONTHS and not done.months_current
    assert pq.read_schema(tf.folder(lake) / "_schema" / "empty.parquet").remove_metadata() == tf.SCHEMA

    con = duckdb.connect(str(warehouse), read_only=True)
    values = con.execute(
        "select department_id, indicator_id, period, raw_value as value from marts.fct_indicator_values"
        " where period_type = 'month'"
    ).df()
    con.close()
    for month in MONTHS:
        got = read_month(lake, month)
        assert set(got["period"]) == {month}
        assert "hours" not in set(got["indicator_id"])  # no target, no forecast
        # D3 was merged away at the end of July: forecast while it exists, not after
        assert ("D3" in set(got["department_id"])) == (month <= dt.date(2025, 7, 1))
        version, target = ("v1", 90.0) if month < dt.date(2025, 7, 1) else ("v2", 95.0)
        assert set(got["catalogue_version"]) == {version} and set(got["target"]) == {target}
        # what forecast.py gives on exactly the data through the month: nothing after it is read
        through = values[(pd.to_datetime(values["period"]).dt.date <= month) & (values["indicator_id"] == "rate")]
        through = through[through["department_id"].isin(set(got["department_id"]))]
        targets = pd.DataFrame(
            {
                "indicator_id": ["rate"],
                "target": [target],
                "direction": ["higher"],
                "lower_bound": [0.0],
                "upper_bound": [100.0],
            }
        )
        expected = forecast_attainment(through, targets)
        pd.testing.assert_series_equal(
            got["p_meet"].reset_index(drop=True),
            expected["p_meet"].astype(float).reset_index(drop=True),
            check_names=False,
        )
        assert list(got["status"]) == list(expected["status"])
    early, late = read_month(lake, dt.date(2025, 5, 1)), read_month(lake, dt.date(2025, 9, 1))
    assert set(early["status"]) == {"too_short"} and early["p_meet"].isna().all()  # 5 months: too short
    ok = late[late["status"] == "ok"]
    assert len(ok) == 2 and ok["p_meet"].between(0, 1).all()
    assert (ok["lo80"] <= ok["forecast"]).all() and (ok["forecast"] <= ok["hi80"]).all()
    assert (ok["hi80"] <= 100).all() and (ok["lo80"] >= 0).all()  # inside the bounds


def test_a_month_whose_inputs_did_not_change_is_left_alone(warehouse: Path, tmp_path: Path):
    lake = tmp_path / "lake"
    forecast(warehouse, lake)
    before = {m: tf.month_file(lake, m).read_bytes() for m in MONTHS}
    again = forecast(warehouse, lake)
    assert again.months_forecast == [] and again.months_current == MONTHS
    assert {m: tf.month_file(lake, m).read_bytes() for m in MONTHS} == before

    # A resubmitted August value changes August's and September's forecasts only.
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update marts.fct_indicator_values set raw_value = 50 where department_id = 'D1' and period = '2025-08-01'"
        " and period_type = 'month' and indicator_id = 'rate'"
    )
    con.close()
    changed = forecast(warehouse, lake)
    assert changed.months_forecast == [dt.date(2025, 8, 1), dt.date(2025, 9, 1)]
    after = {m: tf.month_file(lake, m).read_bytes() for m in MONTHS}
    assert [m for m in MONTHS if after[m] != before[m]] == [dt.date(2025, 8, 1), dt.date(2025, 9, 1)]


def test_the_same_inputs_give_the_same_bytes_in_another_lake(warehouse: Path, tmp_path: Path):
    forecast(warehouse, tmp_path / "one")
    forecast(warehouse, tmp_path / "two", months=MONTHS[-2:])  # fewer months in a call: the same files
    for month in MONTHS[-2:]:
        assert (
            tf.month_file(tmp_path / "one", month).read_bytes() == tf.month_file(tmp_path / "two", month).read_bytes()
        )


# --- the bulletin's list ------------------------------------------------------------


def findings_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_indicator as select * from (values ('rate', 'v1', '好评率', '%')) "
        "as t(indicator_id, catalogue_version, indicator_name, unit)"
    )
    con.execute(
        """create table marts.fct_target_forecasts as select * from (values
           ('D1', 96.0, 0.10, 'ok'),    -- meets 95 today, unlikely by December: slipping
           ('D2', 80.0, 0.02, 'ok'),    -- below and unlikely
           ('D3', 85.0, 0.30, 'ok'),    -- below and unlikely
           ('D4', 97.0, 0.80, 'ok'),    -- likely: not listed
           ('D5', null, null, 'too_short')
        ) as t(department_id, last_value, p_meet, status)"""
    )
    con.execute(
        """create or replace table marts.fct_target_forecasts as
           select date '2025-09-01' as period, department_id, 'rate' as indicator_id, 'v1' as catalogue_version,
                  date '2025-09-01' as last_period, last_value, date '2025-12-01' as forecast_period,
                  3 as horizon_months, 9 as n_months, 'ETS(A,N,N)' as forecast_model, last_value as forecast,
                  last_value - 5 as lo80, last_value + 5 as hi80, 95.0 as target, 'higher' as direction,
                  p_meet, status, null as reason
           from marts.fct_target_forecasts"""
    )
    return con


def test_at_risk_lists_those_slipping_then_the_least_likely(tmp_path: Path):
    from pipelines.publish.findings import target_forecasts

    con = findings_warehouse(tmp_path / "w.duckdb")
    found = target_forecasts(con, {"last_month": dt.date(2025, 9, 1)}, at_risk_below=0.5, listed=1)
    assert found["available"] and found["n_forecast"] == 4 and found["n_too_short"] == 1
    assert found["n_at_risk"] == 3 and found["n_slipping"] == 1
    assert [r["department_id"] for r in found["slipping"]] == ["D1"]
    assert [r["department_id"] for r in found["lowest"]] == ["D2"] and found["n_lowest"] == 2  # capped at 1
    assert found["by_indicator"] == [{"name": "好评率", "forecast": 4, "at_risk": 3}]
    assert len(found["by_department"]["D5"]) == 1  # the pages say why there is no forecast
    # another month: none
    none = target_forecasts(con, {"last_month": dt.date(2025, 8, 1)}, at_risk_below=0.5, listed=1)
    assert none["n_forecast"] == 0 and not none["slipping"]
    con.close()


def test_settings_are_checked_at_load(tmp_path: Path):
    from pydantic import ValidationError

    from pipelines.publish.config import BulletinConfig
    from pipelines.reference import IndicatorNode

    common = {"indicator": "x", "name": "x", "weight": 1, "direction": "higher", "normalisation": "min_max"}
    assert IndicatorNode(**common, unit="%").value_bounds == (0.0, 100.0)
    assert IndicatorNode(**common, unit="小时").value_bounds == (None, None)
    assert IndicatorNode(**common, unit="%", bounds=(0, None)).value_bounds == (0.0, None)
    with pytest.raises(ValidationError, match="bounds needs"):
        IndicatorNode(**common, unit="%", bounds=(5, 1))
    with pytest.raises(ValidationError, match="at_risk_below"):
        BulletinConfig(forecasts={"at_risk_below": 1.5})
    with pytest.raises(ValidationError, match="listed"):
        BulletinConfig(forecasts={"listed": 0})
