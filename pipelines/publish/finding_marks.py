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
import json
from pathlib import Path
from typing import Any

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
    from pipelines.warehouse import file_lock  # here: the CLI imports this module for its names

    path = marks_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock"), exclusive=True), path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(mark, ensure_ascii=False, sort_keys=True) + "\n")
    return mark


def current_marks(path: Path | None = None) -> dict[Key, dict[str, Any]]:
    """The latest mark of every marked finding. A damaged line is an error naming
    the file and line: a mark is never dropped silently."""
    path = path or marks_path()
    marks: dict[Key, dict[str, Any]] = {}
    if not path.is_file():
        return marks
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            mark = json.loads(line)
            key = (mark["screen"], mark["period_type"], mark["period"], mark["department_id"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a finding mark ({error})") from None
        marks[key] = mark
    return marks
