"""Freezing the year (封账): the state file and its ledger entries, the ingest rule (a
delivery for a month of a frozen year is refused until the year is reopened with a
reason), verify against tampering, and the command line; the whole loop through `govperf run`
and an annual approval is in tests/test_annual.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from pipelines import year_freeze
from pipelines.audit.verify import PeriodFilter, Report, check_year_freezes
from pipelines.ingest import submissions
from pipelines.ingest.land import lake_paths, read_file_load
from pipelines.ledger.events import ledger_of
from tests.test_submissions import _deliver, _ingest, _register, _row

APPROVAL = {"edition": "2025", "revision": 1, "manifest_sha256": "ab" * 32}
FROZEN_AT = dt.datetime(2026, 2, 10, 9, 30)
MARCH = dt.date(2025, 3, 1)


def _freeze(home: Path, year: int = 2025, **approval) -> dict:
    return year_freeze.freeze_year(home, year, by="张三", at=FROZEN_AT, approval=APPROVAL | approval)


def _verify(home: Path, period: str | None = None) -> Report:
    report = Report()
    check_year_freezes(report, SimpleNamespace(home=home), ledger_of(home).entries(), PeriodFilter(period))
    return report


# ------------------------------------------------------------------ the state


def test_a_year_is_frozen_until_reopened_with_a_reason_and_each_event_is_in_the_ledger(tmp_path):
    assert year_freeze.frozen_years(tmp_path) == {}
    with pytest.raises(year_freeze.YearFreezeRefused, match="2025 is not frozen: it was never frozen"):
        year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="更正")
    frozen = _freeze(tmp_path)
    assert frozen["n"] == 1 and frozen["approval"] == APPROVAL and frozen["at"] == "2026-02-10 09:30"
    assert list(year_freeze.frozen_years(tmp_path)) == [2025]
    # The same approval again (a retried approval) records nothing more.
    assert _freeze(tmp_path) == frozen and len(year_freeze.read_events(tmp_path)) == 1

    for reason in ("", "   \n "):
        with pytest.raises(year_freeze.YearFreezeRefused, match="the reason .* is required"):
            year_freeze.reopen_year(tmp_path, 2025, by="李四", reason=reason)
    with pytest.raises(year_freeze.YearFreezeRefused, match="who does it"):
        year_freeze.reopen_year(tmp_path, 2025, by=" ", reason="更正")
    with pytest.raises(year_freeze.YearFreezeRefused, match="cannot come before the freeze"):
        year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="更正", at=dt.datetime(2026, 2, 1, 9, 0))
    with pytest.raises(year_freeze.YearFreezeRefused, match="names the approval"):
        year_freeze.freeze_year(tmp_path, 2024, by="张三", at=FROZEN_AT, approval={})
    with pytest.raises(year_freeze.YearFreezeRefused, match="not a year"):
        year_freeze.freeze_year(tmp_path, 25, by="张三", at=FROZEN_AT, approval=APPROVAL)
    assert len(year_freeze.read_events(tmp_path)) == 1  # nothing refused was written

    reopened = year_freeze.reopen_year(
        tmp_path,
        2025,
        by="李四",
        reason="审计整改：王建国（13912345678）报送的8月数据有误",
        at=dt.datetime(2026, 3, 2, 10, 0),
    )
    assert "13912345678" not in reopened["reason"] and "[手机号]" in reopened["reason"]
    assert "王建国" not in year_freeze.freezes_path(tmp_path).read_text(encoding="utf-8")
    assert year_freeze.frozen_years(tmp_path) == {}
    with pytest.raises(year_freeze.YearFreezeRefused, match="was reopened already, by 李四 at 2026-03-02 10:00"):
        year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="again")
    # A later approval freezes it again.
    again = _freeze(tmp_path, revision=2)
    assert year_freeze.frozen_years(tmp_path)[2025]["n"] == again["n"] == 3

    kinds = [(e.kind, e.body["n"], e.body["year"]) for e in ledger_of(tmp_path).entries() if e.kind.startswith("year_")]
    assert kinds == [("year_frozen", 1, 2025), ("year_reopened", 2, 2025), ("year_frozen", 3, 2025)]
    assert ledger_of(tmp_path).entries()[-1].body["approval"]["revision"] == 2
    assert _verify(tmp_path).ok and _verify(tmp_path).checked["year freezes and reopenings"] == 3


def _cycles(home: str, year: int) -> list[int]:
    """Freeze and reopen `year` five times; return the numbers the lines got."""
    numbers = []
    for n in range(5):
        numbers.append(_freeze(Path(home), year, revision=n + 1)["n"])
        numbers.append(year_freeze.reopen_year(Path(home), year, by="李四", reason=f"第{n + 1}次")["n"])
    return numbers


def _reopen_once(home: str) -> str:
    try:
        year_freeze.reopen_year(Path(home), 2030, by=f"analyst {os.getpid()}", reason="更正")
        return "reopened"
    except year_freeze.YearFreezeRefused as refused:
        return str(refused)


def test_freezes_and_reopenings_from_four_processes_at_once_are_numbered_once_and_one_reopening_wins(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        numbers = [n for batch in pool.map(_cycles, [str(tmp_path)] * 4, [2021, 2022, 2023, 2024]) for n in batch]
    assert sorted(numbers) == list(range(1, 41))
    for year, events in year_freeze.history(tmp_path).items():
        assert [e["event"] for e in events] == ["frozen", "reopened"] * 5, year
    assert year_freeze.frozen_years(tmp_path) == {}
    # One frozen year, four analysts reopening it at once: one reopening is recorded.
    _freeze(tmp_path, 2030)
    with ProcessPoolExecutor(4) as pool:
        outcomes = list(pool.map(_reopen_once, [str(tmp_path)] * 4))
    assert outcomes.count("reopened") == 1, outcomes
    assert all("2030 is not frozen: it was reopened already" in o for o in outcomes if o != "reopened")
    assert len(year_freeze.read_events(tmp_path)) == 42
    report = _verify(tmp_path)
    assert report.ok and report.checked["year freezes and reopenings"] == 42, report.mismatches


def test_verify_finds_a_freeze_record_edited_added_or_removed(tmp_path):
    _freeze(tmp_path)
    year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="更正", at=dt.datetime(2026, 3, 2, 10, 0))
    _freeze(tmp_path, 2024)
    path = year_freeze.freezes_path(tmp_path)
    original = path.read_text(encoding="utf-8")
    assert _verify(tmp_path).ok
    assert _verify(tmp_path, "2024-05").checked["year freezes and reopenings"] == 1

    path.write_text(original.replace("更正", "无"), encoding="utf-8")
    assert [m.what for m in _verify(tmp_path).mismatches] == ["edited: it differs from ledger entry 1"]

    lines = original.splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")  # the reopening removed: 2025 frozen again
    assert year_freeze.frozen_years(tmp_path).keys() == {2024, 2025}
    assert [m.what for m in _verify(tmp_path).mismatches] == ["missing: the ledger recorded it (entry 1)"]

    forged = json.loads(lines[1]) | {"n": 4, "at": "2026-04-01 09:00"}
    path.write_text(original + json.dumps(forged, ensure_ascii=False) + "\n", encoding="utf-8")
    problems = _verify(tmp_path).mismatches
    assert [m.what for m in problems] == ["not in the ledger: added or edited after it was recorded"]
    assert "reopened record 4 (2025)" in problems[0].where

    path.write_text(original, encoding="utf-8")
    assert _verify(tmp_path).ok


# ------------------------------------------------------------------ ingest


def test_a_late_resubmission_for_a_frozen_year_is_refused_until_the_year_is_reopened(tmp_path):
    """Through the real ingest of a month: D001's correction arrives after 2025 was
    frozen; it is refused (archived, quarantined, a warning naming the file, the year,
    the freeze and the reopen command), March keeps what it was frozen with; a 2026
    file lands; reopened with a reason, the same correction lands and replaces D001's rows."""
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    _deliver(inbox, "好差评明细_202503.csv", [_row("A1", "D001"), _row("B1", "D002")], dt.datetime(2025, 4, 3, 9))
    _ingest(tmp_path)
    first_load = read_file_load(next((lake / "file_loads" / "service_transactions" / "2025-03").glob("*.parquet")))
    _freeze(tmp_path)
    frozen_register = _register(tmp_path)

    # Re-landing what had landed before the freeze is not a delivery (a new landing rule, a new key).
    landings, outcomes = _ingest(tmp_path)
    assert [x.file_hash for x in landings] == [first_load.file_hash] and landings[0].file_error is None
    assert not [o for o in outcomes if o.check_name == "year_frozen"]

    correction = _deliver(
        inbox, "好差评明细_202503_更正.csv", [_row("A1", "D001", "非常不满意")], dt.datetime(2026, 3, 1, 9)
    )
    landings, outcomes = _ingest(tmp_path)
    assert _register(tmp_path) == frozen_register  # nothing replaced
    refused = next(x for x in landings if x.file_name.endswith("更正.csv"))
    assert (refused.rows_accepted, refused.rows_quarantined, refused.rows_read) == (0, 2, 2)
    warning = [o for o in outcomes if o.check_name == "year_frozen"]
    assert len(warning) == 1 and warning[0].severity == "warning" and not warning[0].passed
    reason = warning[0].details
    for said in (
        "service_transactions/好差评明细_202503_更正.csv is a resubmission for 2025-03",
        "2025 was frozen at 2026-02-10 09:30 by 张三 (approval of edition 2025 r1)",
        'govperf year reopen 2025 --reason "…" --by NAME',
    ):
        assert said in reason, reason
    assert not [o for o in outcomes if not o.passed and o.severity == "error"]  # it never blocks the month
    # Nothing lost: the file stays in the inbox, its original is archived, its lines are in quarantine.
    assert correction.is_file()
    paths = lake_paths(lake, "service_transactions", MARCH, refused.file_hash)
    assert (tmp_path / refused.archive_path).read_bytes() == correction.read_bytes()
    quarantined = pq.read_table(paths["quarantine"]).to_pylist()
    assert [q["line"] for q in quarantined] == [1, 2] and "非常不满意" in quarantined[1]["raw_text"]
    assert {q["reason"] for q in quarantined} == {reason}
    assert read_file_load(paths["file_load"]).file_error == reason

    # A first delivery for a frozen month is refused as well (the month had none of this source).
    _deliver(inbox, "好差评明细_202504.csv", [_row("C1", "D003", month="2025-04")], dt.datetime(2026, 3, 1, 9))
    _, april = _ingest(tmp_path, month=dt.date(2025, 4, 1))
    assert "is a first delivery for 2025-04" in next(o.details for o in april if o.check_name == "year_frozen")
    assert submissions.read_register(lake, "service_transactions", dt.date(2025, 4, 1)) == []
    # A month of a year not frozen lands as ever.
    _deliver(inbox, "好差评明细_202601.csv", [_row("J1", "D001", month="2026-01")], dt.datetime(2026, 2, 3, 9))
    january, outcomes = _ingest(tmp_path, month=dt.date(2026, 1, 1))
    assert january[0].rows_accepted == 1 and not [o for o in outcomes if o.check_name == "year_frozen"]

    # Reopening says why; the same resubmission then lands and replaces D001's slice.
    year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="D001 更正3月数据", at=dt.datetime(2026, 3, 2, 10))
    landings, outcomes = _ingest(tmp_path)
    assert not [o for o in outcomes if o.file_hash and (o.check_name == "year_frozen" or not o.passed)]
    assert next(x for x in landings if x.file_name.endswith("更正.csv")).rows_accepted == 1
    assert _register(tmp_path) == [
        ("好差评明细_202503.csv", "D001", 1, "superseded", "好差评明细_202503_更正.csv"),
        ("好差评明细_202503.csv", "D002", 1, "current", ""),
        ("好差评明细_202503_更正.csv", "D001", 1, "current", ""),
    ]
    assert not pq.read_table(paths["quarantine"]).num_rows


def test_a_freeze_changes_no_stamp_and_a_reopening_only_those_of_months_it_held_files_back_in(tmp_path):
    """Freezing a year whose files have all landed changes no ingest stamp (so nothing is
    landed or scored again); a file the freeze holds back is named in its month's stamp,
    and reopening the year takes it out, so `govperf run` lands it and scores the month."""
    from pipelines.ingest.stamps import month_stamps
    from tests.test_submissions import MAPPING, REGISTRY

    def stamps(home: Path | None = tmp_path) -> dict:
        return month_stamps(MAPPING, REGISTRY, None, tmp_path / "inbox", MARCH, dt.date(2025, 4, 1),
                            dt.date(2026, 3, 1), home=home)  # fmt: skip

    _deliver(tmp_path / "inbox", "好差评明细_202503.csv", [_row("A1", "D001")], dt.datetime(2025, 4, 3, 9))
    _ingest(tmp_path)
    never = stamps()
    assert never == stamps(home=None)
    _freeze(tmp_path)
    assert stamps() == never

    _deliver(tmp_path / "inbox", "好差评明细_202503_更正.csv", [_row("A1", "D001", "不满意")], dt.datetime(2026, 3, 1))
    held = stamps()
    assert held["2025-03-01"]["held_back_by_year_freeze"] == ["service_transactions/好差评明细_202503_更正.csv"]
    _ingest(tmp_path)  # refused: still held back, the same stamp
    assert stamps() == held
    year_freeze.reopen_year(tmp_path, 2025, by="李四", reason="更正")
    reopened = stamps()
    assert "held_back_by_year_freeze" not in reopened["2025-03-01"] and reopened != held
    _ingest(tmp_path)  # landed now
    _freeze(tmp_path, revision=2)
    assert stamps() == reopened


# ------------------------------------------------------------------ the command line


def govperf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command as a user types it, run from this checkout (python -m pipelines.cli)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )


def _env(root: Path) -> dict[str, str]:
    from tests.conftest import SHARED_CACHE

    checkout = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    return env | {
        "GOVPERF_HOME": str(root / "home"),
        "GOVPERF_INBOX": str(root / "inbox"),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(root / "home" / "dagster_home"),
        "PYTHONPATH": os.pathsep.join([checkout, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }


def test_year_commands_refuse_in_one_sentence_and_verify_fails_on_a_tampered_freezes_file(tmp_path):
    env = _env(tmp_path)
    home = tmp_path / "home"
    assert "no year has been frozen" in govperf("year", "status", env=env).stdout
    missing = govperf("year", "reopen", "2025", "--by", "李四", env=env)
    assert missing.returncode == 2 and "Missing option '--reason'" in missing.stderr
    not_frozen = govperf("year", "reopen", "2025", "--reason", "更正", "--by", "李四", env=env)
    assert not_frozen.returncode == 1 and "2025 is not frozen: it was never frozen" in not_frozen.stderr

    frozen = govperf("year", "freeze", "2025", "--by", "张三", "--edition", "2025", "--revision", "1", env=env)
    assert frozen.returncode == 0 and "2025: frozen at" in frozen.stdout, frozen.stderr
    empty = govperf("year", "reopen", "2025", "--reason", "  ", "--by", "李四", env=env)
    assert empty.returncode == 1 and "the reason (--reason) is required" in empty.stderr
    status = json.loads(govperf("year", "status", "--json", env=env).stdout)
    assert status["2025"]["frozen"] and status["2025"]["current"]["approval"] == {"edition": "2025", "revision": 1}

    verified = govperf("verify", "--json", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["checked"]["year freezes and reopenings"] == 1
    path = year_freeze.freezes_path(home)
    path.write_text(path.read_text(encoding="utf-8").replace("张三", "王五"), encoding="utf-8")
    tampered = govperf("verify", env=env)
    assert tampered.returncode == 1 and "edited: it differs from ledger entry" in tampered.stdout + tampered.stderr
