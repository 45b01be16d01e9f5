"""The real Baltimore City 311 extract (tests/data/real/baltimore311), mapped
onto service transactions by examples/baltimore311 (a mapping file, no code), run
through the whole pipeline with `govperf run`.

Expected figures are computed here, independently, from the raw CSV with pandas,
by the rules the mapping states: duplicate and transferred requests are not
counted; days to close are calendar days between the dates (the city's DaysOpen);
a request is on time when closed by its DueDate, and an open request whose due
time has passed at a month's end is late in that month.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from pipelines.settings import PROJECT_ROOT

# Whole pipeline runs on real data: the second CI stage (make test runs both).
pytestmark = pytest.mark.slow

BALTIMORE = PROJECT_ROOT / "tests" / "data" / "real" / "baltimore311"
EXAMPLE = PROJECT_ROOT / "examples" / "baltimore311"
FIRST, LAST = "2014-01", "2019-02"
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
NOT_CASES = {"Closed (Duplicate)", "Open (Duplicate)", "New (Duplicate)", "Closed (Transferred)"}


def govperf(config: Path, home: Path, *args: str) -> Path:
    said(config, home, *args)
    return home


def said(config: Path, home: Path, *args: str) -> str:
    """What `govperf run` printed, after checking it succeeded."""
    env = os.environ | {
        "GOVPERF_HOME": str(home),
        "GOVPERF_CONFIG": str(config),
        "GOVPERF_INBOX": str(BALTIMORE),
        "DAGSTER_HOME": str(home / "dagster_home"),
    }
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE"):
        env.pop(derived, None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "govperf"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    if not BALTIMORE.is_dir():
        pytest.fail(f"the real Baltimore data is missing: {BALTIMORE}")
    frame = pd.read_csv(BALTIMORE / "311_sample.csv")
    for column in ("CreatedDate", "DueDate", "CloseDate"):
        frame[column] = pd.to_datetime(frame[column], format=TIME_FORMAT)
    return frame


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = govperf(EXAMPLE, tmp_path_factory.mktemp("baltimore"), "--from", FIRST, "--to", LAST)
    return home / "warehouse" / "govperf.duckdb"


def marts(db: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).df()


def cases(raw: pd.DataFrame) -> pd.DataFrame:
    return raw[~raw["SRStatus"].isin(NOT_CASES)].copy()


def test_every_row_is_read_and_accepted(warehouse: Path) -> None:
    quality = marts(
        warehouse,
        "select distinct file_name, rows_read, rows_accepted, rows_quarantined "
        "from marts.fct_data_quality where file_name is not null",
    )
    assert quality[["rows_read", "rows_accepted", "rows_quarantined"]].values.tolist() == [[10_000, 10_000, 0]]


def test_days_to_close_follow_the_citys_days_open(raw: pd.DataFrame) -> None:
    """The rule (calendar days between the dates) gives the city's own figure."""
    days = (raw["CloseDate"].dt.normalize() - raw["CreatedDate"].dt.normalize()).dt.days
    known = raw["DaysOpen"].notna()
    assert known.sum() > 9_000
    assert (days[known] == raw.loc[known, "DaysOpen"]).all()


def test_median_days_to_close_per_agency_and_month(raw: pd.DataFrame, warehouse: Path) -> None:
    closed = cases(raw).dropna(subset=["CloseDate"])
    closed["days"] = (closed["CloseDate"].dt.normalize() - closed["CreatedDate"].dt.normalize()).dt.days
    closed["period"] = closed["CloseDate"].dt.to_period("M").dt.to_timestamp()
    expected = closed.groupby(["Agency", "period"])["days"].median()

    ours = marts(
        warehouse,
        """
        select d.department_name as agency, v.period, v.raw_value, v.n_obs
        from marts.fct_indicator_values v join marts.dim_department d using (department_id)
        where v.indicator_id = 'median_days_to_close' and v.period_type = 'month' and v.raw_value is not null""",
    )
    ours["period"] = pd.to_datetime(ours["period"])
    ours = ours.set_index(["agency", "period"])["raw_value"]
    assert len(expected) > 300
    assert sorted(ours.index) == sorted(expected.index)
    assert (ours.loc[expected.index] - expected).abs().max() < 1e-9


def test_on_time_rate_per_agency_and_month(raw: pd.DataFrame, warehouse: Path) -> None:
    requests = cases(raw).dropna(subset=["DueDate"])
    months = pd.period_range(FIRST, LAST, freq="M")
    rows = []
    for month in months:
        start, end = month.to_timestamp(), (month + 1).to_timestamp()
        closed_in_month = requests[(requests["CloseDate"] >= start) & (requests["CloseDate"] < end)]
        open_and_late = requests[
            (requests["CreatedDate"] < end)
            & (requests["DueDate"] < end)
            & (requests["CloseDate"].isna() | (requests["CloseDate"] >= end))
        ]
        for agency in set(closed_in_month["Agency"]) | set(open_and_late["Agency"]):
            mine = closed_in_month[closed_in_month["Agency"] == agency]
            late_open = (open_and_late["Agency"] == agency).sum()
            judged = len(mine) + late_open
            rows.append((agency, start, 100.0 * (mine["CloseDate"] <= mine["DueDate"]).sum() / judged, judged))
    expected = pd.DataFrame(rows, columns=["agency", "period", "rate", "judged"]).set_index(["agency", "period"])

    ours = marts(
        warehouse,
        """
        select d.department_name as agency, v.period, v.raw_value, v.n_obs
        from marts.fct_indicator_values v join marts.dim_department d using (department_id)
        where v.indicator_id = 'on_time_rate' and v.period_type = 'month' and v.raw_value is not null""",
    )
    ours["period"] = pd.to_datetime(ours["period"])
    ours = ours.set_index(["agency", "period"])
    assert len(expected) > 300
    assert sorted(ours.index) == sorted(expected.index)
    assert (ours.loc[expected.index, "n_obs"] == expected["judged"]).all()
    assert (ours.loc[expected.index, "raw_value"] - expected["rate"]).abs().max() < 1e-6


def test_every_agency_month_is_ranked(warehouse: Path) -> None:
    ranked = marts(
        warehouse,
        "select count(*) as n, count(distinct period) as months from marts.fct_rankings where period_type = 'month'",
    )
    assert ranked["months"][0] >= 60 and ranked["n"][0] > 300


def test_one_run_without_a_range_scores_every_month_the_export_spans(tmp_path: Path, warehouse: Path) -> None:
    """The export is filed under its last month (`period: 2019-02`) and its rows go back
    to 2014: a `govperf run` given no months lands it, then scores every month its
    rows are dated in, as the run given the whole range did."""
    from tests.test_rerun_and_duplicates import all_marts

    home = tmp_path / "home"
    output = said(EXAMPLE, home)
    assert "running the full job for 2019-02..2019-02" in output
    assert f"running the full job for {FIRST}..{LAST} too" in output, output[-3000:]
    assert all_marts(home / "warehouse" / "govperf.duckdb") == all_marts(warehouse)


def test_the_xlsx_loads_every_row_like_the_csv(tmp_path: Path, warehouse: Path) -> None:
    """The XLSX declares a wrong sheet dimension (A1); all 10,000 rows must load,
    and they must be the CSV's rows."""
    config = tmp_path / "config"
    (config / "mappings").mkdir(parents=True)
    (config / "reference").symlink_to(EXAMPLE / "reference")
    mapping = yaml.safe_load((EXAMPLE / "mappings" / "service_transactions.yaml").read_text(encoding="utf-8"))
    mapping |= {"file_pattern": "311_sample.xlsx", "format": "xlsx"}
    mapping["timestamp_formats"] = mapping["timestamp_formats"] + ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"]
    (config / "mappings" / "service_transactions.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    home = govperf(config, tmp_path / "home", "--job", "ingest", "--from", LAST, "--to", LAST)

    lake = str(home / "lake" / "service_transactions" / "*" / "*.parquet")
    csv_lake = str(warehouse.parent.parent / "lake" / "service_transactions" / "*" / "*.parquet")
    columns = "case_id, department_id, service_item, channel, received_at, completed_at, due_at, status"
    with duckdb.connect() as con:
        from_xlsx = con.sql(f"select {columns} from read_parquet('{lake}') order by case_id").fetchall()
        from_csv = con.sql(f"select {columns} from read_parquet('{csv_lake}') order by case_id").fetchall()
    assert len(from_xlsx) == 10_000
    assert from_xlsx == from_csv
