"""Freezing the year (封账): after the annual appraisal is approved, the months of its
year take no new delivery until an analyst reopens the year with a reason.

`state/year_freezes.jsonl` holds two kinds of line, appended under a lock and never
rewritten (pipelines/jsonl_state.py), numbered in the order written:

    {"n": 1, "event": "frozen",   "year": 2025, "by", "at", "recorded_at",
                                  "approval": {"edition": "2025", "revision": 1, "manifest_sha256": …}}
    {"n": 2, "event": "reopened", "year": 2025, "by", "at", "recorded_at", "reason" (masked)}

A year is frozen when its last line is `frozen`. Each line is recorded in the ledger
first (year_frozen, year_reopened), under the file's lock, so `govperf verify` finds
a line edited, added or removed. Ingest (pipelines/ingest/assets.py) reads the state:
a delivery for a month of a frozen year is refused (docs/methodology.md §13j).

This module is below ingest: it imports nothing of ingest, transform or publish at
its top (the masking of free text and the ledger are imported when they are used).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipelines import jsonl_state

TIME_FORMAT = "%Y-%m-%d %H:%M"
MAX_REASON = 2_000  # characters: one paragraph, as an appeal's reason
APPROVAL_KEYS = ("edition", "revision", "manifest_sha256", "run_id")


class YearFreezeRefused(ValueError):
    """A freeze or reopening that cannot be recorded; the message says why."""


def freezes_path(home: Path) -> Path:
    return home / "state" / "year_freezes.jsonl"


def reopen_command(year: int) -> str:
    return f'govperf year reopen {year} --reason "…" --by NAME'


def _year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        raise YearFreezeRefused(f"{year!r} is not a year like 2025")
    return year


def _time(at: dt.datetime | None) -> str:
    return (at or dt.datetime.now()).strftime(TIME_FORMAT)


def _person(by: str, option: str = "--by") -> str:
    by = " ".join((by or "").split())
    if not by:
        raise YearFreezeRefused(f"who does it ({option}) is required")
    return by


def read_events(home: Path) -> list[dict[str, Any]]:
    """Every line of the freezes file, in the order written."""
    return jsonl_state.read(freezes_path(home), required=("n", "event", "year"))


def _fold(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The last event of each year."""
    last: dict[int, dict[str, Any]] = {}
    for record in records:
        last[int(record["year"])] = record
    return last


def frozen_years(home: Path) -> dict[int, dict[str, Any]]:
    """The years frozen now, each with its `frozen` record (who, when, which approval)."""
    return {year: r for year, r in _fold(read_events(home)).items() if r["event"] == "frozen"}


def history(home: Path) -> dict[int, list[dict[str, Any]]]:
    """Every year that was ever frozen, with its events in order."""
    years: dict[int, list[dict[str, Any]]] = {}
    for record in read_events(home):
        years.setdefault(int(record["year"]), []).append(record)
    return years


def _approval(approval: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(approval, dict) or not str(approval.get("edition") or "").strip():
        raise YearFreezeRefused("a freeze names the approval it comes from: at least its edition (approval['edition'])")
    unknown = sorted(set(approval) - set(APPROVAL_KEYS))
    if unknown:
        raise YearFreezeRefused(f"approval keys {', '.join(unknown)} are not among {', '.join(APPROVAL_KEYS)}")
    return {k: approval[k] for k in APPROVAL_KEYS if approval.get(k) is not None}


def freeze_year(home: Path, year: int, *, by: str, at: dt.datetime, approval: dict[str, Any]) -> dict[str, Any]:
    """Freeze `year`, from `approval` (its edition key, revision, manifest SHA-256, run id).
    The same approval freezing a year it froze already records nothing (an approval
    retried); another approval of a frozen year (a later revision) is recorded as a new
    freeze. Returns the year's `frozen` record."""
    year = _year(year)
    body = {
        "event": "frozen",
        "year": year,
        "by": _person(by),
        "at": _time(at),
        "recorded_at": _time(None),
        "approval": _approval(approval),
    }

    def numbered(records: list[dict[str, Any]]) -> dict[str, Any]:
        current = _fold(records).get(year)
        if current and current["event"] == "frozen" and current.get("approval") == body["approval"]:
            raise _AlreadyFrozen(current)
        return {"n": len(records) + 1} | body

    try:
        return jsonl_state.append(
            freezes_path(home), numbered, before_writing=lambda r: _record_in_ledger(home, "year_frozen", r)
        )
    except _AlreadyFrozen as same:
        return same.record


class _AlreadyFrozen(Exception):
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record


def reopen_year(home: Path, year: int, *, by: str, reason: str, at: dt.datetime | None = None) -> dict[str, Any]:
    """Reopen a frozen year, with the reason (masked as appeals' texts are). Refused
    for a year not frozen, an empty reason, or a time before the freeze."""
    year = _year(year)
    reason = " ".join((reason or "").split())
    if not reason:
        raise YearFreezeRefused("the reason (--reason) is required: why the year is reopened is recorded")
    if len(reason) > MAX_REASON:
        raise YearFreezeRefused(f"the reason is {len(reason):,} characters long; at most {MAX_REASON:,}")
    from pipelines.ingest.masking import mask_free_text

    body = {
        "event": "reopened",
        "year": year,
        "by": _person(by),
        "at": _time(at),
        "recorded_at": _time(None),
        "reason": mask_free_text(reason) or "",
    }

    def checked(records: list[dict[str, Any]]) -> dict[str, Any]:
        current = _fold(records).get(year)
        if current is None or current["event"] != "frozen":
            state = (
                "was never frozen"
                if current is None
                else f"was reopened already, by {current['by']} at {current['at']}"
            )
            raise YearFreezeRefused(f"{year} is not frozen: it {state}; nothing to reopen")
        if body["at"] < current["at"]:
            raise YearFreezeRefused(f"the reopening ({body['at']}) cannot come before the freeze ({current['at']})")
        return {"n": len(records) + 1} | body

    return jsonl_state.append(
        freezes_path(home), checked, before_writing=lambda r: _record_in_ledger(home, "year_reopened", r)
    )


def _record_in_ledger(home: Path, kind: str, record: dict[str, Any]) -> None:
    from pipelines.ledger import events

    ledger = events.ledger_of(home)
    ledger.append(kind, {k: v for k, v in record.items() if k != "event"})
    events.sign(ledger)


def describe_freeze(record: dict[str, Any]) -> str:
    approval = record.get("approval") or {}
    revision = f" r{approval['revision']}" if approval.get("revision") is not None else ""
    return f"frozen at {record['at']} by {record['by']} (approval of edition {approval.get('edition', '?')}{revision})"


# ------------------------------------------------------------------ ingest's rule

# The start of the reason a refused file carries (its file log's file_error), so that
# ingest tells a file refused for a frozen year from one that could not be read.
REFUSAL_MARK = "年度已封账 (year frozen)"
# Appended to a refused landing's configuration fingerprint, so that once the year is
# reopened the same bytes are landed again instead of the refusal being reused.
REFUSED_FINGERPRINT_SUFFIX = "+year-frozen"


def refusal_reason(file_name: str, period_label: str, record: dict[str, Any], resubmission: bool) -> str:
    year = int(record["year"])
    what = "a resubmission" if resubmission else "a first delivery"
    return (
        f"{REFUSAL_MARK}: {file_name} is {what} for {period_label}, and {year} was {describe_freeze(record)}; "
        f"nothing of a frozen year is landed. Reopen the year to land it: `{reopen_command(year)}`, "
        "then run again (the file stays in the inbox, its original archived)"
    )


def is_refusal(file_error: str | None) -> bool:
    return bool(file_error) and file_error.startswith(REFUSAL_MARK)
