"""What `govperf run` would redo, and why (pipelines/plan.py), on a real inbox.

The steps record stamps of what they read (pipelines/stamps.py); here the stamps
are recorded as a finished run would leave them (each step's own stamp function,
over the generated files), then the inbox, configuration or layout is changed the
way an analyst does, and the plan must name exactly the months and editions
that read the change.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines import plan as planning
from pipelines.checks.suites import load_suites
from pipelines.ingest import stamps as ingest_stamps
from pipelines.ingest import submissions
from pipelines.ingest.land import FILE_LOAD_SCHEMA
from pipelines.ingest.mapping import load_mappings
from pipelines.parquet import write_table
from pipelines.publish import stamps as edition_stamps
from pipelines.publish.config import Edition
from pipelines.reference import first_scorable_month, load_departments
from pipelines.settings import PROJECT_ROOT, QUALITY_DIR, settings
from pipelines.stamps import StampStore
from pipelines.transform import stamps as dbt_stamps
from tests.conftest import use_home

FIRST, LAST = dt.date(2025, 7, 1), dt.date(2025, 9, 1)
TODAY = dt.date(2026, 12, 1)


def _record_as_done(today: dt.date = TODAY) -> None:
    """The stamps a successful run over FIRST..LAST records, and its outputs' presence."""
    s = settings()
    store = StampStore(s.home)
    first_scorable = first_scorable_month(s.reference_dir)
    months = [m.isoformat() for m in ingest_stamps.months_through(first_scorable, LAST)]
    registry, suites, ingest = load_departments(s.reference_dir), load_suites(QUALITY_DIR), {}
    for source, mapping in load_mappings(s.mappings_dir).items():
        ingest[source] = ingest_stamps.month_stamps(
            mapping, registry, suites.get(source), s.inbox, first_scorable, LAST, today
        )
        store.record(ingest_stamps.step_name(source), ingest[source])
    scores = dbt_stamps.month_stamps(ingest, s.reference_dir, months, s.lake, dbt_stamps.appeals_in_state(s.home))
    store.record(dbt_stamps.STEP, scores)
    editions = [Edition.month(dt.date.fromisoformat(m)) for m in months if m >= FIRST.isoformat()]
    editions.append(Edition.quarter_of(LAST))
    store.record(edition_stamps.STEP, edition_stamps.edition_stamps(editions, scores, s.reference_dir))
    # Outputs that exist after a run: a landing per file, the warehouse, the editions.
    s.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    s.duckdb_path.touch()
    for edition in editions:
        (s.bulletins / edition.folder / edition.key).mkdir(parents=True, exist_ok=True)
    for source, by_month in ingest.items():
        for month, stamp in by_month.items():
            for sha, _mtime in stamp["files"].values():
                period = dt.date.fromisoformat(month)
                landing = planning.lake_paths(s.lake, source, period, sha)["file_load"]
                row = {"source": source, "period": period, "file_hash": sha, "first_row_month": period}
                write_table(pa.Table.from_pylist([row], schema=FILE_LOAD_SCHEMA), landing)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_city: Path) -> Path:
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city, inbox)
    use_home(monkeypatch, tmp_path / "home", inbox)
    return tmp_path


def _plan(today: dt.date = TODAY) -> planning.Plan:
    return planning.make_plan(settings(), FIRST, LAST, today)


def _stale(plan: planning.Plan) -> dict[str, list[str]]:
    return {step.step: sorted(step.stale) for step in plan.steps if step.stale}


def test_a_new_home_has_everything_to_do(home: Path) -> None:
    plan = _plan()
    assert plan.window() == ("2025-07", "2025-09") and plan.job() == "full"
    assert _stale(plan)["bulletins"] == ["2025-07", "2025-08", "2025-09", "2025-Q3"]
    assert all("not done yet" in step.describe() for step in plan.steps)


def test_nothing_changed_means_nothing_to_do(home: Path) -> None:
    _record_as_done()
    plan = _plan()
    assert not plan.needed and plan.window() is None and plan.job() is None
    lines = plan.describe()
    assert len(lines) == len(load_mappings(settings().mappings_dir)) + 2
    assert all(": nothing to do for " in line for line in lines), lines


def test_a_corrected_middle_month_redoes_it_and_every_later_month(home: Path) -> None:
    _record_as_done()
    corrected = sorted((settings().inbox / "hotline_complaints").glob("*202508*"))[0]
    corrected.write_bytes(corrected.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n")
    plan = _plan()
    stale = _stale(plan)
    assert stale == {
        "ingest/hotline_complaints": ["2025-08", "2025-09"],
        "dbt": ["2025-08", "2025-09"],
        "bulletins": ["2025-08", "2025-09", "2025-Q3"],
    }
    assert plan.window() == ("2025-08", "2025-09") and plan.job() == "full"
    said = "\n".join(plan.describe())
    assert f"changed: hotline_complaints/{corrected.name}" in said
    assert "the landed data of hotline_complaints changed" in said
    assert "an earlier month changed" in said


def test_a_later_delivery_time_alone_is_a_change(home: Path) -> None:
    _record_as_done()
    delivered = sorted((settings().inbox / "service_transactions").glob("*202509*"))[0]
    os.utime(delivered, (delivered.stat().st_atime, delivered.stat().st_mtime + 3600))
    assert _stale(_plan())["ingest/service_transactions"] == ["2025-09"]


def test_a_new_month_is_the_only_work(home: Path) -> None:
    held_back = home / "held_back"
    for path in sorted(settings().inbox.rglob("*202509*")):
        target = held_back / path.relative_to(settings().inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    global LAST
    try:
        LAST = dt.date(2025, 8, 1)
        _record_as_done()
    finally:
        LAST = dt.date(2025, 9, 1)
    for path in sorted(held_back.rglob("*.*")):
        shutil.move(path, settings().inbox / path.relative_to(held_back))
    plan = _plan()
    assert plan.window() == ("2025-09", "2025-09")
    stale = _stale(plan)
    assert stale["dbt"] == ["2025-09"] and stale["bulletins"] == ["2025-09", "2025-Q3"]
    assert all(months == ["2025-09"] for step, months in stale.items() if step.startswith("ingest/"))


def test_a_deadline_passing_redoes_only_the_months_it_concerns(home: Path) -> None:
    # Recorded on 2025-10-06: the monthly sources' September deadlines (5th and 10th of
    # October) and the quarterly leader reviews' third-quarter deadline (15 October) are
    # then passed, not passed, and not passed; by 2025-10-12 only the 10th has passed too.
    recorded_on, planned_on = dt.date(2025, 10, 6), dt.date(2025, 10, 12)
    _record_as_done(today=recorded_on)
    stale = _stale(_plan(today=planned_on))
    mappings = load_mappings(settings().mappings_dir)
    expected = {
        f"ingest/{source}": ["2025-09"]
        for source, m in mappings.items()
        if m.months_per_period == 1 and recorded_on <= submissions.deadline_of(m, LAST) < planned_on
    }
    assert expected and all(m.submission_deadline_day == 10 for s, m in mappings.items() if f"ingest/{s}" in expected)
    assert stale == expected | {"dbt": ["2025-09"], "bulletins": ["2025-09", "2025-Q3"]}


def test_a_template_change_redraws_every_edition_and_nothing_else(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _record_as_done()
    reports = tmp_path / "reports"
    shutil.copytree(PROJECT_ROOT / "reports", reports)
    (reports / "static" / "bulletin.css").write_text("/* changed */", encoding="utf-8")
    monkeypatch.setattr(edition_stamps, "REPORTS", reports)
    plan = _plan()
    assert _stale(plan) == {"bulletins": ["2025-07", "2025-08", "2025-09", "2025-Q3"]}
    assert plan.job() == "bulletins" and "the templates or stylesheet changed" in "\n".join(plan.describe())


def test_a_missing_warehouse_is_rebuilt_whatever_the_stamps_say(home: Path) -> None:
    _record_as_done()
    settings().duckdb_path.unlink()
    plan = _plan()
    assert _stale(plan) == {"dbt": ["2025-07", "2025-08", "2025-09"]} and plan.job() == "scoring"
    assert "its output is missing" in "\n".join(plan.describe())
