"""When appeals may be filed, and when an edition may be approved.

The window opens when an edition is first drafted (the first `govperf run` that
draws it; state/first_drafts.jsonl keeps the time, once per edition) and lasts
`appeals.window_working_days` working days (bulletin.yaml), counted from the day
after, on the holiday calendar (holidays.yaml: 法定节假日 off, 调休 on). An appeal
is filed up to the end of the window's last working day. The edition is approved
after that day, once every appeal about it is decided and reflected in the marts,
and every upheld appeal about a figure has its corrected resubmission, unless the
approver forces it with a note (`--force --note`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from pipelines import jsonl_state
from pipelines.appeals.store import TIME_FORMAT, Appeal

WEEKEND = (5, 6)


def first_drafts_path(home: Path) -> Path:
    return home / "state" / "first_drafts.jsonl"


def first_drafts(home: Path) -> dict[str, dt.datetime]:
    """Edition key -> when it was first drafted."""
    drafted: dict[str, dt.datetime] = {}
    for record in jsonl_state.read(first_drafts_path(home), required=("edition", "drafted_at")):
        drafted.setdefault(record["edition"], dt.datetime.strptime(record["drafted_at"], TIME_FORMAT))
    return drafted


def record_first_drafts(home: Path, edition_keys: Iterable[str], at: dt.datetime | None = None) -> None:
    """Record the editions drafted now that had never been drafted before."""
    at = at or dt.datetime.now()
    wanted = set(edition_keys) - set(first_drafts(home))
    for key in sorted(wanted):

        def once(records: list[dict], key: str = key) -> dict:
            if any(r.get("edition") == key for r in records):  # another run recorded it meanwhile
                return {"edition": key, "drafted_at": next(r["drafted_at"] for r in records if r.get("edition") == key)}
            return {"edition": key, "drafted_at": at.strftime(TIME_FORMAT)}

        jsonl_state.append(first_drafts_path(home), once)


def working_calendar(reference_dir: Path):
    """is_working_day(date) on the holiday calendar."""
    from pipelines.reference import load_holidays

    exceptions = dict(load_holidays(reference_dir).days())

    def is_working_day(day: dt.date) -> bool:
        return exceptions.get(day, day.weekday() not in WEEKEND)

    return is_working_day


def last_working_day(start: dt.date, working_days: int, is_working_day) -> dt.date:
    """The `working_days`-th working day after `start` (`start` itself if 0)."""
    day, counted = start, 0
    while counted < working_days:
        day += dt.timedelta(days=1)
        counted += is_working_day(day)
    return day


@dataclasses.dataclass(frozen=True)
class Window:
    edition_key: str
    first_draft: dt.datetime
    working_days: int
    closes: dt.date  # the window's last day: appeals up to its end, approval after it

    def describe(self) -> str:
        return (
            f"the appeal window of {self.edition_key} runs {self.working_days} working days from its first draft "
            f"({self.first_draft:{TIME_FORMAT}}) to the end of {self.closes}"
        )


def window_of(home: Path, reference_dir: Path, edition_key: str, working_days: int) -> Window | None:
    drafted = first_drafts(home).get(edition_key)
    if drafted is None:
        return None
    closes = last_working_day(drafted.date(), working_days, working_calendar(reference_dir))
    return Window(edition_key, drafted, working_days, closes)


def approval_refusals(
    window: Window | None,
    edition_key: str,
    approved_at: dt.datetime,
    appeals: list[Appeal],
    in_marts: dict[str, dict],
) -> list[str]:
    """Why `edition_key` cannot be approved at `approved_at`: each reason a sentence.

    `appeals` are those about the edition's periods (state file); `in_marts` is
    marts.fct_appeals by appeal id (status, resubmitted_at): the marts must show each
    decision, and an upheld figure its resubmission, before the edition is final."""
    reasons = []
    if window is None:
        reasons.append(f"{edition_key} has no recorded first draft: run `govperf run` so that it is drafted first")
    elif approved_at.date() <= window.closes:
        reasons.append(f"{window.describe()}: approval is possible from {window.closes + dt.timedelta(days=1)}")
    pending = [a.appeal_id for a in appeals if a.status == "pending"]
    if pending:
        reasons.append(f"appeal(s) {', '.join(pending)} not decided yet (govperf appeal decide)")
    stale = [
        a.appeal_id
        for a in appeals
        if a.status != "pending" and in_marts.get(a.appeal_id, {}).get("status") != a.status
    ]
    if stale:
        reasons.append(f"the marts predate the decision on {', '.join(stale)}: run `govperf run` to score it again")
    waiting = [
        a.appeal_id
        for a in appeals
        if a.status == "upheld"
        and a.indicator_id
        and a.appeal_id not in stale
        and in_marts.get(a.appeal_id, {}).get("resubmitted_at") is None
    ]
    if waiting:
        reasons.append(
            f"upheld appeal(s) {', '.join(waiting)} about a figure await the department's corrected resubmission "
            "(land it with `govperf run`)"
        )
    return reasons
