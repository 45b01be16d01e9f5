"""The inputs of one source's month, as the ingest step reads them (pipelines/stamps.py).

A month of a source is landed and checked again when any of these differ from
the last time it was: a file added, removed, or changed in its bytes or its
delivery time (its modification time); the mapping, the department registry,
the masking key or the keyword settings (the landing rules' fingerprint); the
source's quality suite; whether its submission deadline has passed (the
completeness check says "missing" only after it); the ingest code and the
libraries that read files. Each month's stamp is chained to the month before,
since the volume check reads the months before.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines import year_freeze
from pipelines.checks.suites import Suite
from pipelines.ingest.frozen import landed_for_real
from pipelines.ingest.land import config_fingerprint
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.submissions import deadline_of
from pipelines.ledger.events import file_sha256
from pipelines.reference import DepartmentRegistry
from pipelines.stamps import PACKAGE_ROOT, chain, files_digest, library_versions

LIBRARIES = ("pyarrow", "duckdb", "openpyxl", "xlrd", "jieba", "great-expectations", "pandas", "chardet")


def step_name(source: str) -> str:
    return f"ingest__{source}"


def months_through(first: dt.date, last: dt.date) -> list[dt.date]:
    months, current = [], first.replace(day=1)
    while current <= last:
        months.append(current)
        current = (current + dt.timedelta(days=32)).replace(day=1)
    return months


def ingest_code() -> str:
    return files_digest(
        PACKAGE_ROOT / "ingest", PACKAGE_ROOT / "checks", PACKAGE_ROOT / "parquet.py", PACKAGE_ROOT / "text.py"
    )


def month_stamps(
    mapping: SourceMapping,
    registry: DepartmentRegistry,
    suite: Suite | None,
    inbox: Path,
    first_month: dt.date,
    last_month: dt.date,
    today: dt.date,
    home: Path | None = None,
) -> dict[str, dict]:
    """The chained stamp of every month from `first_month` (the first scorable month)
    through `last_month`, keyed by the month's first day (ISO). With `home`, a month of
    a frozen year also names the inbox files its freeze holds back (pipelines/year_freeze.py):
    reopening the year changes the stamp of those months only, so the next run lands
    them and scores those months again, while freezing a year whose files have all
    landed changes no stamp (and rebuilds nothing)."""
    by_month: dict[dt.date, dict[str, list]] = {}
    for path in sorted(inbox.glob(mapping.file_pattern)):
        period = mapping.period_of(path.name)
        if path.is_file() and period is not None and period <= last_month:
            by_month.setdefault(period, {})[path.relative_to(inbox).as_posix()] = [
                file_sha256(path),
                path.stat().st_mtime_ns,
            ]
    shared = {
        "landing_rules": config_fingerprint(mapping, registry),
        "suite": suite.model_dump_json() if suite else None,
        "code": ingest_code(),
        "libraries": library_versions(*LIBRARIES),
    }
    frozen = year_freeze.frozen_years(home) if home is not None else {}
    held_back = {
        period: sorted(
            name
            for name, (sha, _mtime) in files.items()
            if not landed_for_real(home / "lake", mapping.source, period, sha)  # type: ignore[operator]
        )
        for period, files in by_month.items()
        if period.year in frozen
    }
    stamps = {
        month.isoformat(): shared
        | {
            "files": by_month.get(month, {}),
            # Only a period's first month is checked for completeness (a quarter's, for quarterly sources).
            "deadline_passed": today > deadline_of(mapping, month) if mapping.is_period_start(month) else None,
        }
        | ({"held_back_by_year_freeze": held} if (held := held_back.get(month)) else {})
        for month in months_through(first_month, last_month)
    }
    return chain(stamps)
