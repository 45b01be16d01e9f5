"""Appeals and their decisions in $GOVPERF_HOME/state/appeals.jsonl.

Two kinds of line, appended under a lock and never rewritten (pipelines/jsonl_state.py):

    {"event": "filed",   "appeal_id": "A0001", period, department, indicator or case,
                         reason, evidence (both masked), filed_by, filed_at}
    {"event": "decided", "appeal_id": "A0001", "outcome": "upheld" | "rejected",
                         decided_by, decided_at, note (masked)}

An appeal is decided once. Each line is also recorded in the audit ledger
(appeal_filed, appeal_decided), so a line later edited or removed from the state
file shows against the ledger. The current state of every appeal goes to the lake
as reference/appeals.parquet on every scoring run (`appeals_table`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import jsonl_state

OUTCOMES = ("upheld", "rejected")
STATUS_LABELS = {"pending": "待复核", "upheld": "申诉成立", "rejected": "申诉不成立"}
TIME_FORMAT = "%Y-%m-%d %H:%M"
MAX_TEXT = 2_000  # characters of a reason, evidence or note: one paragraph, not a file


class AppealRefused(ValueError):
    """An appeal or decision that cannot be recorded; the message says why."""


@dataclasses.dataclass(frozen=True)
class Appeal:
    appeal_id: str
    period_key: str  # 2026-03 or 2026-Q1: the edition appealed against
    period_type: str  # month | quarter | year
    period: dt.date  # its first day
    department_id: str
    indicator_id: str | None
    case_id: str | None
    reason: str
    evidence: str
    filed_by: str
    filed_at: dt.datetime
    status: str = "pending"  # pending | upheld | rejected
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    decision_note: str | None = None

    @property
    def subject(self) -> str:
        return "case" if self.case_id else "figure"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def appeals_path(home: Path) -> Path:
    return home / "state" / "appeals.jsonl"


def _masked(text: str, what: str) -> str:
    from pipelines.ingest.masking import mask_free_text

    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise AppealRefused(f"the {what} is {len(text):,} characters long; at most {MAX_TEXT:,}")
    return mask_free_text(text) or ""


def _time(at: dt.datetime | None) -> str:
    return (at or dt.datetime.now()).strftime(TIME_FORMAT)


def file_appeal(
    home: Path,
    *,
    period_key: str,
    period_type: str,
    period: dt.date,
    department_id: str,
    indicator_id: str | None,
    case_id: str | None,
    reason: str,
    evidence: str,
    filed_by: str,
    at: dt.datetime | None = None,
) -> Appeal:
    """Record an appeal (the caller has checked the window and the subject); its text
    is masked before it is written. Returns it with its number."""
    if (indicator_id is None) == (case_id is None):
        raise AppealRefused("an appeal is about one figure (--indicator) or one case (--case), not both or neither")
    if not reason.strip():
        raise AppealRefused("the reason (--reason) is required")
    if not filed_by.strip():
        raise AppealRefused("who files the appeal (--by) is required")
    body = {
        "event": "filed",
        "period_key": period_key,
        "period_type": period_type,
        "period": period.isoformat(),
        "department_id": department_id,
        "indicator_id": indicator_id,
        "case_id": case_id,
        "reason": _masked(reason, "reason"),
        "evidence": _masked(evidence, "evidence"),
        "filed_by": filed_by.strip(),
        "filed_at": _time(at),
        # when it was recorded: a paper appeal may be recorded after the day it was filed
        "recorded_at": _time(None),
    }

    def numbered(records: list[dict[str, Any]]) -> dict[str, Any]:
        appeals = _fold(records)
        _refuse_a_second(appeals.values(), department_id, period_key, indicator_id, case_id)
        last = max((_number(a) for a in appeals), default=0)
        return {"appeal_id": f"A{last + 1:04d}"} | body

    record = jsonl_state.append(
        appeals_path(home), numbered, before_writing=lambda r: _record_in_ledger(home, "appeal_filed", r)
    )
    return _fold([record])[record["appeal_id"]]


def _number(appeal_id: str) -> int:
    return int(appeal_id.removeprefix("A"))


def _refuse_a_second(
    appeals: Iterable[Appeal], department_id: str, period_key: str, indicator_id: str | None, case_id: str | None
) -> None:
    """One appeal at a time per case or figure: another is refused while an earlier one
    is undecided or upheld (after a rejection the department may appeal again)."""
    for earlier in appeals:
        if earlier.status == "rejected" or earlier.department_id != department_id:
            continue
        same = (case_id is not None and earlier.case_id == case_id) or (
            indicator_id is not None and earlier.indicator_id == indicator_id and earlier.period_key == period_key
        )
        if same:
            raise AppealRefused(
                f"{department_id} already appealed {'case ' + str(case_id) if case_id else indicator_id} "
                f"({earlier.appeal_id}, {earlier.status_label}): one appeal at a time"
            )


def decide(
    home: Path, appeal_id: str, outcome: str, decided_by: str, note: str, at: dt.datetime | None = None
) -> Appeal:
    """Record the decision on an undecided appeal; returns the appeal as decided."""
    if outcome not in OUTCOMES:
        raise AppealRefused(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if not decided_by.strip():
        raise AppealRefused("who decides (--by) is required")
    record = {
        "event": "decided",
        "appeal_id": appeal_id,
        "outcome": outcome,
        "decided_by": decided_by.strip(),
        "decided_at": _time(at),
        "recorded_at": _time(None),
        "note": _masked(note, "note"),
    }

    def checked(records: list[dict[str, Any]]) -> dict[str, Any]:
        appeals = _fold(records)
        if appeal_id not in appeals:
            known = ", ".join(sorted(appeals)[-5:]) or "none yet"
            raise AppealRefused(f"no appeal {appeal_id} in {appeals_path(home)} (latest: {known})")
        appeal = appeals[appeal_id]
        if appeal.status != "pending":
            raise AppealRefused(
                f"appeal {appeal_id} was decided already: {appeal.status_label}, by {appeal.decided_by} "
                f"at {appeal.decided_at:{TIME_FORMAT}}; a decision is final"
            )
        if dt.datetime.strptime(record["decided_at"], TIME_FORMAT) < appeal.filed_at:
            raise AppealRefused(
                f"the decision ({record['decided_at']}) cannot come before the appeal ({appeal.filed_at:{TIME_FORMAT}})"
            )
        return record

    jsonl_state.append(
        appeals_path(home), checked, before_writing=lambda r: _record_in_ledger(home, "appeal_decided", r)
    )
    return current_appeals(home)[appeal_id]


def _record_in_ledger(home: Path, kind: str, record: dict[str, Any]) -> None:
    from pipelines.ledger import events

    ledger = events.ledger_of(home)
    ledger.append(kind, {k: v for k, v in record.items() if k != "event"})
    events.sign(ledger)


def current_appeals(home: Path) -> dict[str, Appeal]:
    """Every appeal as its lines leave it, by number."""
    return _fold(jsonl_state.read(appeals_path(home), required=("event", "appeal_id")))


def _fold(records: list[dict[str, Any]]) -> dict[str, Appeal]:
    appeals: dict[str, Appeal] = {}
    for record in records:
        if record["event"] == "filed":
            if record["appeal_id"] in appeals:
                raise ValueError(f"appeal {record['appeal_id']} is filed twice in the appeals file")
            appeals[record["appeal_id"]] = Appeal(
                appeal_id=record["appeal_id"],
                period_key=record["period_key"],
                period_type=record["period_type"],
                period=dt.date.fromisoformat(record["period"]),
                department_id=record["department_id"],
                indicator_id=record.get("indicator_id"),
                case_id=record.get("case_id"),
                reason=record["reason"],
                evidence=record.get("evidence", ""),
                filed_by=record["filed_by"],
                filed_at=dt.datetime.strptime(record["filed_at"], TIME_FORMAT),
            )
        elif record["event"] == "decided" and record["appeal_id"] in appeals:
            appeals[record["appeal_id"]] = dataclasses.replace(
                appeals[record["appeal_id"]],
                status=record["outcome"],
                decided_by=record["decided_by"],
                decided_at=dt.datetime.strptime(record["decided_at"], TIME_FORMAT),
                decision_note=record.get("note", ""),
            )
    return appeals


APPEALS_SCHEMA = pa.schema(
    [
        ("appeal_id", pa.string()),
        ("period_key", pa.string()),
        ("period_type", pa.string()),
        ("period", pa.date32()),
        ("department_id", pa.string()),
        ("indicator_id", pa.string()),
        ("case_id", pa.string()),
        ("reason", pa.string()),
        ("evidence", pa.string()),
        ("filed_by", pa.string()),
        ("filed_at", pa.timestamp("us")),
        ("status", pa.string()),
        ("decided_by", pa.string()),
        ("decided_at", pa.timestamp("us")),
        ("decision_note", pa.string()),
    ]
)


def appeals_table(appeals: dict[str, Appeal]) -> pa.Table:
    """The appeals as dbt reads them (reference/appeals.parquet), in number order."""
    rows = [
        {field.name: getattr(appeal, field.name) for field in APPEALS_SCHEMA}
        for _key, appeal in sorted(appeals.items(), key=lambda item: _number(item[0]))
    ]
    return pa.Table.from_pylist(rows, schema=APPEALS_SCHEMA)
