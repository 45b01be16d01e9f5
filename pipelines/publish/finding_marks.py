"""Analysts' marks on the points to look into (疑点核查): a finding checked, with its
outcome, 已核实 (confirmed) or 已排除 (ruled out), who checked it, when, and a note.

A finding is (screen, period_type, period, department_id) in marts.fct_anomalies.
The marts are rebuilt from data on every run and hold no marks; the marks live in
$GOVPERF_HOME/state/finding_marks.jsonl, one JSON line per mark, appended under a
lock, so a rerun or a rebuilt warehouse keeps them. The latest mark of a finding is
its outcome; the earlier lines stay as its history. Editions show the outcome beside
the finding, and the file is an input of their drawing (publish/stamps.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipelines import jsonl_state
from pipelines.settings import settings

OUTCOMES = ("已核实", "已排除")
SCREENS = ("rating_mismatch", "rating_uniformity", "rating_fast", "rating_burst", "copied_comment")
Key = tuple[str, str, str, str]  # screen, period_type, period (ISO date), department_id


def marks_path() -> Path:
    return settings().home / "state" / "finding_marks.jsonl"


def add_mark(
    screen: str,
    period_type: str,
    period: dt.date,
    department_id: str,
    outcome: str,
    by: str,
    note: str = "",
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record a mark; ValueError names the field that is wrong."""
    if screen not in SCREENS:
        raise ValueError(f"screen {screen!r} is not one of {', '.join(SCREENS)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {' / '.join(OUTCOMES)}")
    if not by.strip():
        raise ValueError("who checked the finding (--by) is required")
    mark = {
        "screen": screen,
        "period_type": period_type,
        "period": period.isoformat(),
        "department_id": department_id,
        "outcome": outcome,
        "by": by.strip(),
        "note": note.strip(),
        "at": (at or dt.datetime.now()).replace(microsecond=0).isoformat(sep=" "),
    }
    jsonl_state.append(marks_path(), mark)
    return mark


def current_marks(path: Path | None = None) -> dict[Key, dict[str, Any]]:
    """The latest mark of every marked finding (a damaged line is an error naming it)."""
    records = jsonl_state.read(path or marks_path(), required=("screen", "period_type", "period", "department_id"))
    return {(m["screen"], m["period_type"], m["period"], m["department_id"]): m for m in records}
