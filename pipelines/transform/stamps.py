"""The inputs of one month's dbt build (pipelines/stamps.py).

A month is scored again when any of these differ from its last successful
build: the landed data of any source for that month (the ingest stamps, which
already cover file bytes, delivery times and landing rules), the reference YAML
that becomes the reference tables (catalogue, departments, holidays), the dbt
project (every file dbt parses, and dbt's version), the code that runs dbt, the
build's vars, the engine (GOVPERF_ENGINE) and DuckDB's version. Months are chained: a month's scores read the
months before (look-back imputation, year-to-date budget, rank change, streaks,
change warnings), so a change in one month makes every later month stale.

A file filed under one period may carry rows dated in earlier months (a case
received in March, in April's file; a case updated since; a multi-month export).
Its landing records the earliest month of its rows (file_loads.first_row_month),
and that month's stamp names the file (`later_files`): it and every month after it
are scored again. The file's own period is where it is landed; what is scored is
always every row by its own dates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipelines.appeals import store
from pipelines.ingest.land import file_logs
from pipelines.reference import load_catalogue, lookback_months
from pipelines.settings import DBT_PROJECT_DIR, engine
from pipelines.stamps import PACKAGE_ROOT, chain, digest, files_digest, library_versions

STEP = "dbt"
REFERENCE_FILES = ("catalogue.yaml", "departments.yaml", "holidays.yaml")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml")
PROJECT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")


def project_hash(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """SHA-256 of every file dbt parses (names and bytes), of the dbt version and of the
    engine: each engine's parse is its own (profiles.yml's target is part of a parse)."""
    digest = hashlib.sha256()
    packages = ("dbt-core", "dbt-duckdb", *(("dbt-spark",) if engine() == "spark" else ()))
    for package, installed in library_versions(*packages).items():
        digest.update(f"{package}=={installed}\0".encode())
    digest.update(f"engine={engine()}\0".encode())
    files = [project_dir / name for name in PROJECT_FILES if (project_dir / name).is_file()]
    for folder in PROJECT_FOLDERS:
        files += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    for path in sorted(files):
        digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def later_files(lake: Path, months: list[str]) -> dict[str, list[str]]:
    """Month (ISO first day) -> the landed files of later periods whose rows start in
    it ("<source>/<period>/<sha256>"), read from the lake's file log. Rows dated
    before the first of `months` count in the first."""
    found: dict[str, list[str]] = {}
    if not months:
        return found
    for row in file_logs(lake):
        earliest, period = row.get("first_row_month"), row["period"]
        if earliest is None or earliest >= period:
            continue
        month = max(earliest.isoformat(), months[0])
        found.setdefault(month, []).append(f"{row['source']}/{period:%Y-%m}/{row['file_hash']}")
    return {month: sorted(files) for month, files in found.items()}


def month_stamps(
    ingest: dict[str, dict[str, dict]],
    reference_dir: Path,
    months: list[str],
    lake: Path,
    appeals: Iterable[Mapping[str, Any]],
) -> dict[str, dict]:
    """The chained stamp of each of `months` (every month from the first scorable one,
    ISO first days), from the ingest stamps (source -> month -> stamp) and the files
    of later periods carrying rows of earlier months (later_files)."""
    shared = {
        "reference": files_digest(*(reference_dir / name for name in REFERENCE_FILES)),
        "project": project_hash(),
        # the analytics models run in the same job as dbt: the sentiment model and the forecasts are inputs
        "code": files_digest(
            PACKAGE_ROOT / "transform",
            PACKAGE_ROOT / "analytics",
            PACKAGE_ROOT / "analytics" / "sentiment_model.npz",
            PACKAGE_ROOT / "reference.py",
        ),
        "vars": {"lookback_months": lookback_months(load_catalogue(reference_dir))},
        "engine": engine(),
        "libraries": library_versions("duckdb", "dbt-core", "dbt-duckdb", "statsmodels")
        | (library_versions("dbt-spark", "pyspark") if engine() == "spark" else {}),
    }
    earlier_rows = later_files(lake, months)
    appealed = appeals_by_month(appeals)
    return chain(
        {
            month: shared
            | {"ingest": {source: digest(stamps.get(month)) for source, stamps in sorted(ingest.items())}}
            | ({"later_files": earlier_rows[month]} if month in earlier_rows else {})
            | ({"appeals": appealed[month]} if month in appealed else {})
            for month in months
        }
    )


def appeals_by_month(appeals: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Month (ISO first day) -> a digest of the appeals about its period, as filed and
    decided: fct_appeals shows them, and an upheld appeal about a case changes the
    month's bad reviews (and, chained, every later month). `appeals`: rows with the
    fields of pipelines/appeals/store.APPEALS_SCHEMA, from the state file when planning
    and from the lake file dbt reads when recording a build (a decision made meanwhile
    is then not taken as built)."""
    by_month: dict[str, list] = {}
    for appeal in appeals:
        by_month.setdefault(appeal["period"].isoformat(), []).append(
            (appeal["appeal_id"], appeal["status"], appeal["case_id"], appeal["indicator_id"])
        )
    return {month: digest(sorted(rows)) for month, rows in by_month.items()}


def appeals_in_state(home: Path) -> list[dict[str, Any]]:
    """The appeals as `govperf appeal` left them (for the plan)."""
    return store.appeals_table(store.current_appeals(home)).to_pylist()


def appeals_in_lake(lake: Path) -> list[dict[str, Any]]:
    """The appeals as the reference step wrote them for dbt (for a build's record)."""
    path = lake / "reference" / "appeals.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []
