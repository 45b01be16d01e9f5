"""The quality gate's memory: check outcomes stored per source and month.

A blocking asset check stops downstream assets in its own run only. A scoring or
bulletin run started later (by another schedule, or by hand) learns that a month
failed from what is stored here, and refuses. The store is Parquet in the lake,
so dbt reads the same records into marts.fct_data_quality.

    lake/check_results/<source>/<YYYY-MM>/<check set>.parquet
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ledger import events
from pipelines.parquet import write_table
from pipelines.text import printable

CHECK_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("period", pa.date32()),
        ("file_hash", pa.string()),
        ("check_name", pa.string()),
        ("severity", pa.string()),
        ("passed", pa.bool_()),
        ("details", pa.string()),
    ]
)


# Outcomes about scoring and publishing a month rather than about its data. They
# must not stop the month being scored again once its data are fixed.
PROCESS_SOURCES = ("scoring", "publication")


class GateClosed(Exception):
    """A month failed a blocking check; nothing may be scored or published from it."""


@dataclass(frozen=True)
class CheckOutcome:
    source: str
    period: dt.date
    file_hash: str | None
    check_name: str
    severity: str  # 'error' blocks scoring and the bulletin; 'warning' is listed only
    passed: bool
    details: str

    def __post_init__(self) -> None:
        # Details name files, and a file's name is the sender's choice: one line always.
        object.__setattr__(self, "details", printable(self.details))

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and not self.passed


def check_results_dir(lake: Path) -> Path:
    return lake / "check_results"


def record(lake: Path, source: str, period: dt.date, check_set: str, outcomes: list[CheckOutcome]) -> Path:
    """Replace the stored outcomes of one check set for a source and month, and
    record them in the ledger (the lake's home holds it)."""
    target = check_results_dir(lake) / source / f"{period:%Y-%m}" / f"{check_set}.parquet"
    outcomes = sorted(outcomes, key=lambda o: (o.check_name, o.file_hash or ""))
    written = write_table(pa.Table.from_pylist([asdict(o) for o in outcomes], schema=CHECK_SCHEMA), target)
    events.record_checks(lake.parent, source, period, check_set, outcomes)
    return written


def stored_outcomes(lake: Path, period: dt.date) -> list[CheckOutcome]:
    files = sorted(check_results_dir(lake).glob(f"*/{period:%Y-%m}/*.parquet"))
    outcomes = []
    for path in files:
        for row in pq.read_table(path, schema=CHECK_SCHEMA).to_pylist():
            outcomes.append(CheckOutcome(**row))
    return outcomes


def blocking_failures(lake: Path, period: dt.date, ignore_sources: tuple[str, ...] = ()) -> list[CheckOutcome]:
    return [o for o in stored_outcomes(lake, period) if o.blocks and o.source not in ignore_sources]


def months_feeding(months: list[dt.date]) -> list[dt.date]:
    """Every month whose files feed the scores of `months`: the year to date
    (budget deviation), the quarter (leader reviews) and the month before
    (cases completed this month were received then; rank change)."""
    if not months:
        return []
    first = min(months)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    current = min(first.replace(month=1), previous)
    feeding = []
    while current <= max(months):
        feeding.append(current)
        current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return feeding


def assert_open(lake: Path, periods: list[dt.date], purpose: str, include_process: bool = False) -> None:
    """Raise GateClosed naming every failed blocking check on the data of these
    months or of a month whose files feed them; with include_process, also a
    failed scoring or publication check of these months themselves."""
    failures = [f for p in months_feeding(periods) for f in blocking_failures(lake, p, PROCESS_SOURCES)]
    if include_process:
        failures += [f for p in periods for f in blocking_failures(lake, p) if f.source in PROCESS_SOURCES]
    if failures:
        listed = "; ".join(f"{f.period:%Y-%m} {f.source}/{f.check_name}: {f.details}" for f in failures[:20])
        more = f" (and {len(failures) - 20} more)" if len(failures) > 20 else ""
        raise GateClosed(
            f"{purpose} refused: {len(failures)} blocking check(s) failed for "
            f"{', '.join(sorted({f'{f.period:%Y-%m}' for f in failures}))}: {listed}{more}. "
            "Fix or resubmit the extract and ingest the month again."
        )


def empty_check_file(lake: Path) -> None:
    """A zero-row file so dbt can read the store before any check ran."""
    target = check_results_dir(lake) / "_schema" / "_schema" / "empty.parquet"
    if not target.exists():
        write_table(pa.Table.from_pylist([], schema=CHECK_SCHEMA), target)  # never half-written to a reader
