"""Forecasts of target attainment in the lake: one file per month they were made in.

    lake/target_forecasts/<YYYY-MM>/forecasts.parquet   made with the data through that month
    lake/target_forecasts/_schema/empty.parquet          so that dbt's source always has a file

A file holds, for every department active in its month and every indicator with a
target in the catalogue version of that month, the year-end forecast of
pipelines/analytics/forecast.py: the department's reported monthly values
(marts.fct_indicator_values.raw_value) through that month, nothing after it. So an
edition's forecasts say what was known when its month closed, and stay as they were
when later months arrive.

A file's Parquet metadata holds the SHA-256 of exactly what it was made from (the
series, the targets and bounds, the forecast method's version): a month whose inputs
did not change is not forecast again, and the same inputs give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ingest.land import FORECAST_FOLDER, FORECAST_SCHEMA
from pipelines.parquet import write_table

FOLDER = FORECAST_FOLDER
# The method's version: changing forecast.py's method or this file's layout forecasts every month again.
METHOD_VERSION = "1"
IDENTITY_KEY = b"govperf_inputs_sha256"

SCHEMA = FORECAST_SCHEMA  # the lake's layout (pipelines/ingest/land.py)

VALUES_SQL = """
    select department_id, indicator_id, period, raw_value as value
    from marts.fct_indicator_values
    where period_type = 'month' and period <= $last
    order by department_id, indicator_id, period
"""
# The catalogue version of each month, its indicators with a target, and the
# departments active in it (a department merged away has no forecast after it).
TARGETS_SQL = """
    select indicator_id, catalogue_version, target, direction,
           bound_lo as lower_bound, bound_hi as upper_bound
    from marts.dim_indicator
    where target is not null and effective_from <= $month and effective_to >= $month
    order by indicator_id
"""
DEPARTMENTS_SQL = """
    select department_id
    from marts.dim_department
    where valid_from <= last_day($month) and (valid_to is null or valid_to >= $month)
    order by department_id
"""


@dataclass(frozen=True)
class MonthInputs:
    month: dt.date
    values: pd.DataFrame  # department_id, indicator_id, period, value: through `month`
    targets: pd.DataFrame  # indicator_id, catalogue_version, target, direction, lower_bound, upper_bound

    def digest(self) -> str:
        h = hashlib.sha256(f"{METHOD_VERSION}|{self.month.isoformat()}|".encode())
        for frame in (self.values, self.targets):
            h.update(frame.to_csv(index=False, float_format="%.17g").encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Forecasted:
    months_forecast: list[dt.date]  # made again by this call
    months_current: list[dt.date]  # their inputs unchanged: left as they were
    series: int  # forecasts written by this call
    at_risk: int  # of them, P(meet) below one half


def folder(lake: Path) -> Path:
    return lake / FOLDER


def month_file(lake: Path, month: dt.date) -> Path:
    return folder(lake) / f"{month:%Y-%m}" / "forecasts.parquet"


def ensure_schema_file(lake: Path) -> None:
    """An empty file with the schema: dbt's source reads a glob, which must match a file."""
    target = folder(lake) / "_schema" / "empty.parquet"
    if not target.exists() or pq.read_schema(target).remove_metadata() != SCHEMA:
        write_table(SCHEMA.empty_table(), target)


def month_inputs(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> list[MonthInputs]:
    """What each month's forecasts are made from, read from the marts."""
    values = con.execute(VALUES_SQL, {"last": max(months)}).df()
    values["period"] = pd.to_datetime(values["period"]).dt.date
    inputs = []
    for month in sorted(months):
        targets = con.execute(TARGETS_SQL, {"month": month}).df()
        active = {row[0] for row in con.execute(DEPARTMENTS_SQL, {"month": month}).fetchall()}
        through = values[(values["period"] <= month) & values["department_id"].isin(active)]
        inputs.append(MonthInputs(month, through.reset_index(drop=True), targets))
    return inputs


def forecast_month(inputs: MonthInputs) -> pa.Table:
    """The forecasts made in one month, as the lake file's table (with its identity)."""
    from pipelines.analytics.forecast import OUTPUT_COLUMNS, forecast_attainment

    if inputs.values.empty or inputs.targets.empty:
        frame = pd.DataFrame(columns=OUTPUT_COLUMNS)
    else:
        frame = forecast_attainment(inputs.values, inputs.targets)
    versions = dict(zip(inputs.targets["indicator_id"], inputs.targets["catalogue_version"]))
    frame = frame.rename(columns={"model": "forecast_model"})
    frame.insert(0, "catalogue_version", frame["indicator_id"].map(versions))
    frame.insert(0, "period", inputs.month)
    frame = frame.astype(object).where(frame.notna(), None)
    table = pa.Table.from_pylist(frame.to_dict("records"), schema=SCHEMA)
    return table.replace_schema_metadata({IDENTITY_KEY: inputs.digest().encode()})


def _is_current(target: Path, digest: str) -> bool:
    try:
        return (pq.read_schema(target).metadata or {}).get(IDENTITY_KEY) == digest.encode()
    except (OSError, pa.ArrowInvalid):
        return False


def forecast_months(con: duckdb.DuckDBPyConnection, lake: Path, months: list[dt.date]) -> Forecasted:
    """Write the forecast file of each month whose inputs changed since it was written."""
    ensure_schema_file(lake)
    stale, current = [], []
    for inputs in month_inputs(con, months):
        (current if _is_current(month_file(lake, inputs.month), inputs.digest()) else stale).append(inputs)
    series = at_risk = 0
    # Months are independent: on more than one core they are fitted side by side.
    workers = min(len(stale), os.cpu_count() or 1, 4)
    if workers > 1:
        from pipelines.process_tree import worker_pool  # spawned, and ending with this process

        with worker_pool(workers) as pool:
            tables = list(pool.map(forecast_month, stale))
    else:
        tables = [forecast_month(inputs) for inputs in stale]
    for inputs, table in zip(stale, tables):
        write_table(table, month_file(lake, inputs.month))
        series += sum(s == "ok" for s in table.column("status").to_pylist())
        at_risk += sum(p is not None and p < 0.5 for p in table.column("p_meet").to_pylist())
    return Forecasted([i.month for i in stale], [i.month for i in current], series, at_risk)
