"""The Dagster instance under DAGSTER_HOME: created once, however many commands
start together, and a run whose process has died never stays STARTED.

The tags are spelled out here (not imported) so that these tests say what a
run must record, independently of the code that records it."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import dagster as dg

from pipelines.runner import instance
from tests.conftest import use_home

STORAGE_DATABASES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


def _open_and_read(home: str) -> str | None:
    """In a fresh process: open the home's instance and read its run history."""
    os.environ.update(GOVPERF_HOME=home, DAGSTER_HOME=f"{home}/dagster_home")
    try:
        dagster = instance()
        dagster.get_runs(limit=1)
        dagster.dispose()
    except Exception as error:  # returned, so the test can say what each process saw
        return f"{type(error).__name__}: {error}"[:300]
    return None


def _alembic_versions(database: Path) -> list[str]:
    con = sqlite3.connect(database)
    try:
        return [row[0] for row in con.execute("select version_num from alembic_version")]
    finally:
        con.close()


def test_commands_opening_a_fresh_home_together_create_its_storage_once(tmp_path):
    """Four processes open a new home at once (as four first `govperf run` do): none
    fails, each storage database records one schema version, and a later command
    reads the history (this left two alembic heads: 'more than one head present')."""
    home = tmp_path / "home"
    # An executor, not multiprocessing.Pool: a worker that dies mid-task breaks the
    # executor (BrokenProcessPool, a failure that says so), where a Pool replaced the
    # worker and waited for the lost result forever (CI and here hung 15 minutes on it).
    # Shut down, not terminated: workers end when their queue closes, so a test
    # started with SIGTERM ignored (inherited, as under some job runners) cannot hang.
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        errors = [e for e in pool.map(_open_and_read, [str(home)] * 4) if e]
        errors += [e for e in [pool.submit(_open_and_read, str(home)).result()] if e]
    assert not errors, errors[:3]
    for database in STORAGE_DATABASES:
        versions = _alembic_versions(home / "dagster_home" / database)
        assert len(versions) == 1, f"{database}: {versions}"


def _stamp_second_version(dagster_home: Path, database: str, version: str) -> None:
    con = sqlite3.connect(dagster_home / database)
    with con:
        con.execute("insert into alembic_version (version_num) values (?)", (version,))
    con.close()


def test_a_home_left_with_two_schema_heads_is_repaired(tmp_path, monkeypatch):
    """The state the race left: the head, plus the older revision that a second
    process stamps when it finds the tables already made. The newest is kept."""
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    dagster_home = tmp_path / "home" / "dagster_home"
    instance().dispose()
    head = _alembic_versions(dagster_home / "schedules/schedules.db")[0]
    from dagster._core.storage.sqlite import LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION as older

    for database in STORAGE_DATABASES:
        _stamp_second_version(dagster_home, database, older)
    repaired = instance()
    try:
        assert repaired.get_runs(limit=1) == []
        for database in STORAGE_DATABASES:
            assert _alembic_versions(dagster_home / database) == [head]
    finally:
        repaired.dispose()


def test_a_home_with_unrelated_schema_versions_is_refused_in_one_sentence(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    dagster_home = tmp_path / "home" / "dagster_home"
    instance().dispose()
    _stamp_second_version(dagster_home, "history/runs.db", "0123456789ab")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "govperf"), "ui"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("Error: Dagster's run history in ") and message.count("\n") == 0, message
    assert "0123456789ab" in message and f"move {dagster_home} aside" in message


# --- runs whose process died --------------------------------------------------


def _process_start(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[19]


@dg.op
def _noop() -> None:
    pass


@dg.job
def _recorded_job() -> None:
    _noop()


def _add_started_run(dagster: dg.DagsterInstance, parent: str | None = None, **tags: str) -> str:
    run_id = str(uuid.uuid4())
    dagster.add_run(
        dg.DagsterRun(
            job_name=_recorded_job.name,
            run_id=run_id,
            status=dg.DagsterRunStatus.STARTED,
            tags=tags,
            parent_run_id=parent,
            root_run_id=parent,
        )
    )
    return run_id


def test_only_runs_whose_process_is_gone_are_marked_failed(tmp_path, monkeypatch):
    """A live parallel run (a real sleeping process) is never marked, however the
    clock stands; a dead process's run is FAILURE with the reason; a run whose PID
    now names another process is dead too; a run of another host, and a
    re-execution carrying a dead parent's tags, are left alone."""
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    host = socket.gethostname()
    dagster = instance()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    try:
        live = _add_started_run(
            dagster,
            **{"govperf/host": host, "govperf/pid": str(sleeper.pid), "govperf/pid_start": _process_start(sleeper.pid)},
        )
        dead = _add_started_run(
            dagster, **{"govperf/host": host, "govperf/pid": str(finished.pid), "govperf/pid_start": "12345"}
        )
        reused = _add_started_run(
            dagster,
            **{
                "govperf/host": host,
                "govperf/pid": str(sleeper.pid),
                "govperf/pid_start": str(int(_process_start(sleeper.pid)) - 1),
            },
        )
        elsewhere = _add_started_run(
            dagster, **{"govperf/host": f"not-{host}", "govperf/pid": str(finished.pid), "govperf/pid_start": "12345"}
        )
        # A re-execution from the UI copies the tags of its parent, whose process is gone.
        reexecution = _add_started_run(dagster, parent=dead, **dagster.get_run_by_id(dead).tags)
        dagster.dispose()

        reopened = instance()  # what every command does first
        runs = (live, dead, reused, elsewhere, reexecution)
        status = {run_id: reopened.get_run_by_id(run_id).status.value for run_id in runs}
        assert status == {
            live: "STARTED",
            dead: "FAILURE",
            reused: "FAILURE",
            elsewhere: "STARTED",
            reexecution: "STARTED",
        }
        failure = reopened.all_logs(dead, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert [e.dagster_event.message for e in failure] == [
            f"process {finished.pid} on {host} ended without finishing (killed?)"
        ]
        reopened.dispose()
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_scratch_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    from pipelines.parquet import temporary_beside

    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    lake = tmp_path / "home" / "lake" / "x"
    lake.mkdir(parents=True)
    mine = temporary_beside(lake / "live.parquet")
    mine.write_bytes(b"being written")
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    abandoned = lake / mine.name.replace(f".{os.getpid()}.", f".{finished.pid}.").replace("live", "dead")
    abandoned.write_bytes(b"half")
    instance().dispose()
    assert mine.exists() and not abandoned.exists()
