"""Backtest and speed of the target-attainment forecasts (pipelines/analytics/forecast.py).

    .venv/bin/python benchmarks/forecast_backtest.py
    .venv/bin/python benchmarks/forecast_backtest.py --duckdb var/warehouse/govperf.duckdb

Rolling origin: from every origin, the model is fitted on the months before it and
forecasts 1..3 months ahead; it is compared with the naive forecast (the last value)
by MAPE, and its 80 % intervals' coverage (the share of actuals inside) is counted.
Wanted: coverage within 70-90 %, MAPE below the naive one.

- Baltimore 311 (tests/data/real/baltimore311, real, 2014-01..2019-01): per agency
  with at least 3 requests a month on average, the monthly count of requests
  (duplicates and transfers not counted) and the mean DaysOpen of those created in
  the month. Origins from month 13 on; once with every month before the origin,
  once with only the last 15 (as much history as the sample city has).
- With --duckdb: the sample city's monthly indicator values with a target
  (marts.fct_indicator_values, marts.dim_indicator), origins from month 7 on; and the
  time to forecast the whole city in a fresh process (import, read and forecasts), twice.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BALTIMORE = ROOT / "tests" / "data" / "real" / "baltimore311" / "311_sample.csv"
FIRST, LAST = "2014-01", "2019-01"  # the file's last month, 2019-02, ends on the 13th
NOT_CASES = {"Closed (Duplicate)", "Open (Duplicate)", "New (Duplicate)", "Closed (Transferred)"}
SAMPLE_QUERY = """
    select v.department_id, v.indicator_id, v.period, v.raw_value as value,
           i.target, i.direction, i.unit, i.bound_lo as lower_bound, i.bound_hi as upper_bound
    from marts.fct_indicator_values v
    join marts.dim_indicator i
        on i.indicator_id = v.indicator_id and v.period between i.effective_from and i.effective_to
    where v.period_type = 'month' and i.target is not null
    order by 1, 2, 3
"""


def baltimore_series(path: Path = BALTIMORE) -> dict[str, np.ndarray]:
    """Monthly series per agency: 'count <agency>' and 'days open <agency>'."""
    df = pd.read_csv(path, usecols=["Agency", "CreatedDate", "SRStatus", "DaysOpen"])
    df = df[~df["SRStatus"].isin(NOT_CASES)]
    df["month"] = pd.to_datetime(df["CreatedDate"], format="%m/%d/%Y %I:%M:%S %p").dt.to_period("M")
    df = df[(df["month"] >= FIRST) & (df["month"] <= LAST)]
    months = pd.period_range(FIRST, LAST, freq="M")
    series = {}
    for agency, rows in df.groupby("Agency", sort=True):
        if len(rows) < 3 * len(months):
            continue  # a few requests a month: mostly zeros, no series to speak of
        by_month = rows.groupby("month")
        series[f"count {agency}"] = by_month.size().reindex(months, fill_value=0).to_numpy(float)
        series[f"days open {agency}"] = by_month["DaysOpen"].mean().reindex(months).to_numpy(float)
    return series


def summary(results: pd.DataFrame) -> str:
    r = results[results["actual"] != 0]  # MAPE is undefined at zero
    mape = (r["forecast"] - r["actual"]).abs().div(r["actual"].abs()).mean() * 100
    naive = (r["naive"] - r["actual"]).abs().div(r["actual"].abs()).mean() * 100
    # MAE relative to the naive one: a scale-free second view, not blown up by actuals near 0
    mae_ratio = (results["forecast"] - results["actual"]).abs().sum() / (
        results["naive"] - results["actual"]
    ).abs().sum()
    covered = ((results["actual"] >= results["lo"]) & (results["actual"] <= results["hi"])).mean() * 100
    by_step = " ".join(
        f"h{h} {((g['actual'] >= g['lo']) & (g['actual'] <= g['hi'])).mean() * 100:.0f}%"
        for h, g in results.groupby("step")
    )
    return (
        f"MAPE {mape:5.1f}% vs naive {naive:5.1f}% | MAE/naive {mae_ratio:.2f} | 80% coverage"
        f" {covered:4.1f}% ({by_step}) | {len(results)} forecasts"
    )


def run_baltimore() -> None:
    from pipelines.analytics.forecast import backtest

    series = baltimore_series()
    print(f"Baltimore 311: {len(series)} series of {len(next(iter(series.values())))} months")
    for window in (None, 15):
        label = "all months before the origin" if window is None else f"last {window} months"
        started = time.perf_counter()
        parts = {name: backtest(y, first_origin=12, window=window, bounds=(0.0, np.nan)) for name, y in series.items()}
        elapsed = time.perf_counter() - started
        print(f"  fitted on {label} ({elapsed:.1f} s)")
        for kind in ("count", "days open"):
            both = pd.concat([p for name, p in parts.items() if name.startswith(kind)])
            print(f"    {kind:9s}: {summary(both)}")
        print(f"    all      : {summary(pd.concat(parts.values()))}")


def sample_values(duckdb_path: Path) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.sql(SAMPLE_QUERY).df()


def run_sample(duckdb_path: Path) -> None:
    from pipelines.analytics.forecast import backtest

    values = sample_values(duckdb_path)
    print(f"sample city ({duckdb_path}): {values.groupby(['department_id', 'indicator_id']).ngroups} series")
    parts = {}
    started = time.perf_counter()
    for (department, indicator), rows in values.groupby(["department_id", "indicator_id"]):
        y = rows.set_index(pd.to_datetime(rows["period"]))["value"].asfreq("MS").to_numpy(float)
        bounds = (rows["lower_bound"].iloc[-1], rows["upper_bound"].iloc[-1])  # the catalogue's (dim_indicator)
        parts[(department, indicator)] = backtest(y, first_origin=6, bounds=bounds)
    print(f"  backtest ({time.perf_counter() - started:.1f} s)")
    for indicator in sorted({k[1] for k in parts}):
        print(f"    {indicator:19s}: {summary(pd.concat([p for k, p in parts.items() if k[1] == indicator]))}")
    print(f"    {'all':19s}: {summary(pd.concat(parts.values()))}")
    # cold: a fresh interpreter, as CI's or a user's first run (statsmodels has no JIT to warm)
    for attempt in ("first", "second"):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--city-once", str(duckdb_path)], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - started
        print(f"  whole city, fresh process ({attempt}): {wall:.2f} s wall from start to end; {out.stdout.strip()}")
    started = time.perf_counter()
    city_forecasts(values)
    print(f"  whole city, warm (this process): {time.perf_counter() - started:.2f} s")
    every_month(duckdb_path)


def every_month(duckdb_path: Path) -> None:
    """What the pipeline's asset does on a first run: a forecast as of every month, into a scratch lake."""
    import datetime as dt
    import tempfile

    import duckdb

    from pipelines.analytics.target_forecasts import forecast_months

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        months = [
            m if isinstance(m, dt.date) else m.date()
            for (m,) in con.execute(
                "select distinct period from marts.fct_indicator_values where period_type = 'month' order by 1"
            ).fetchall()
        ]
        with tempfile.TemporaryDirectory() as lake:
            started = time.perf_counter()
            done = forecast_months(con, Path(lake), months)
            first = time.perf_counter() - started
            started = time.perf_counter()
            forecast_months(con, Path(lake), months)
            again = time.perf_counter() - started
    print(
        f"  every month as the asset forecasts them ({len(months)} months, {done.series} forecasts): "
        f"{first:.2f} s; again with nothing changed: {again:.2f} s"
    )


def city_forecasts(values: pd.DataFrame) -> pd.DataFrame:
    from pipelines.analytics.forecast import forecast_attainment

    last = values.sort_values("period").drop_duplicates("indicator_id", keep="last")
    return forecast_attainment(values, last[["indicator_id", "target", "direction", "lower_bound", "upper_bound"]])


def city_once(duckdb_path: Path) -> None:
    """One whole-city forecast, as a fresh process does it; prints its own timings."""
    started, cpu = time.perf_counter(), time.process_time()
    import pipelines.analytics.forecast  # noqa: F401  statsmodels and scipy with it

    imported = time.perf_counter()
    values = sample_values(duckdb_path)
    read = time.perf_counter()
    result = city_forecasts(values)
    done, cpu = time.perf_counter(), time.process_time() - cpu
    ok = (result["status"] == "ok").sum()
    print(
        f"in it: import {imported - started:.2f} s, read {read - imported:.2f} s, forecasts {done - read:.2f} s "
        f"({ok} of {len(result)} series forecast), CPU {cpu:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duckdb", type=Path, help="a built warehouse: backtest the sample city's history too")
    parser.add_argument("--city-once", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.city_once:
        city_once(args.city_once)
        return
    run_baltimore()
    if args.duckdb:
        run_sample(args.duckdb)


if __name__ == "__main__":
    main()
