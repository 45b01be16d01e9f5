"""Opening the Dagster instance under DAGSTER_HOME, safely for many processes.

Two things go wrong when several `govperf` commands share a home:

- Dagster creates its SQLite storage on first open, and two processes doing
  so at once both stamp the schema version: the home then holds two alembic
  "heads" and every later command fails. So the storage is created, checked
  and repaired under one lock, before any run can start.
- `govperf run` executes its job in its own process and starts no daemon, so
  a run whose process is killed would stay STARTED forever. Each run records
  the host, PID and process start time of the process that executes it; when
  the instance is opened, runs whose process is provably gone are marked failed.
  A run is never marked merely because it is old.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

from pipelines.parquet import remove_abandoned_partials
from pipelines.warehouse import file_lock

HOST_TAG, PID_TAG, PID_START_TAG, BOOT_TAG = "govperf/host", "govperf/pid", "govperf/pid_start", "govperf/boot_id"
# Runs that may still have a live process behind them. QUEUED runs have none yet.
UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")
# The SQLite databases Dagster opens (and stamps) when an instance is created.
STORAGE_DATABASES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


class BrokenInstance(RuntimeError):
    """The home's Dagster storage is in a state govperf cannot safely repair."""


def open_instance(dagster_home: Path, write_config: Callable[[Path], Path], govperf_home: Path | None = None):
    """The instance under `dagster_home`, created once under a lock, checked, and
    with the runs of dead processes marked failed. `write_config(dagster_home)`
    writes its dagster.yaml where needed, under the same lock. `govperf_home`, if
    given, is cleared of the scratch files those processes left."""
    import dagster as dg

    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with file_lock(dagster_home / "instance.lock", exclusive=True):
        write_config(dagster_home)
        repair_schema_versions(dagster_home)
        instance = dg.DagsterInstance.get()
        _mark_dead_runs_failed(instance)
        if govperf_home is not None:
            remove_abandoned_partials(govperf_home)
    return instance


# --- schema versions -------------------------------------------------------


def repair_schema_versions(dagster_home: Path) -> None:
    """Leave each storage database with one schema version, or refuse.

    A race at creation leaves two rows in `alembic_version`: the head stamped by
    the process that created the tables, and an older revision stamped by one
    that found the tables already there and took them for an old schema. When
    the rows lie on one line of migrations, the newest is the schema the tables
    were created with, so the older rows are deleted. Anything else is refused.
    """
    for relative in STORAGE_DATABASES:
        path = dagster_home / relative
        if not path.exists():
            continue
        con = sqlite3.connect(path, timeout=60)
        try:
            has_table = con.execute(
                "select 1 from sqlite_master where type = 'table' and name = 'alembic_version'"
            ).fetchone()
            versions = [row[0] for row in con.execute("select version_num from alembic_version")] if has_table else []
            if len(versions) < 2:
                continue
            newest = _newest_on_one_line(versions)
            if newest is None:
                raise BrokenInstance(
                    f"Dagster's run history in {path} records the unrelated schema versions "
                    f"{', '.join(sorted(versions))}, so govperf cannot tell which is true: move "
                    f"{dagster_home} aside (its run history is then lost) and run govperf again."
                )
            with con:
                con.execute("delete from alembic_version where version_num != ?", (newest,))
        finally:
            con.close()


def _newest_on_one_line(versions: list[str]) -> str | None:
    """The one revision of `versions` that descends from all the others, if any."""
    import dagster._core.storage.runs.sqlite.sqlite_run_storage as run_storage_module
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    script = ScriptDirectory.from_config(get_alembic_config(run_storage_module.__file__))
    for candidate in versions:
        try:
            lineage = {revision.revision for revision in script.iterate_revisions(candidate, "base")}
        except Exception:  # a revision this Dagster does not know
            return None
        if set(versions) <= lineage:
            return candidate
    return None


# --- which process runs a run ----------------------------------------------


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Tags that identify the process executing a run (this one by default)."""
    pid = pid or os.getpid()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        PID_START_TAG: str(process_start(pid)),
        BOOT_TAG: _boot_id(),
    }


def process_start(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (field 22 of
    /proc/<pid>/stat), or None if there is no such process. A PID can be reused;
    PID and start time together name one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields_after_name = stat[stat.rindex(")") + 2 :].split()
    return int(fields_after_name[19])


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _executed_by_its_launcher(instance, run) -> bool:
    """Whether the process in the run's tags is the one that executed it. A
    re-execution (from the UI, or Dagster's retries) copies its parent's tags, and
    a run that went through the run queue was executed by Dagster's launcher:
    neither says anything about the process recorded, so both are left alone."""
    import dagster as dg

    if run.parent_run_id is not None:
        return False
    queued = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED, limit=1)
    return not queued.records


def death_of(tags) -> str | None:
    """Why the process recorded in a run's tags has certainly ended, or None if it
    may be alive, or runs on another host, or was not recorded."""
    host, pid, start = tags.get(HOST_TAG), tags.get(PID_TAG), tags.get(PID_START_TAG)
    if host != socket.gethostname() or not (pid or "").isdigit():
        return None
    if tags.get(BOOT_TAG) and tags.get(BOOT_TAG) != _boot_id():
        return f"process {pid} on {host} ended without finishing (the machine restarted)"
    if str(process_start(int(pid))) != start:  # gone, or the PID now names another process
        return f"process {pid} on {host} ended without finishing (killed?)"
    return None


def mark_dead_runs_failed(instance) -> list[str]:
    """Mark failed every unfinished run whose process has ended; the ids marked.
    Under the instance lock, so that two commands never report the same death."""
    with file_lock(Path(instance.root_directory) / "instance.lock", exclusive=True):
        return _mark_dead_runs_failed(instance)


def _mark_dead_runs_failed(instance) -> list[str]:
    import dagster as dg
    from dagster._core.events import JobFailureData, RunFailureReason

    statuses = [dg.DagsterRunStatus[name] for name in UNFINISHED]
    marked = []
    for record in instance.get_run_records(
        filters=dg.RunsFilter(statuses=statuses, tags={HOST_TAG: socket.gethostname()})
    ):
        run = record.dagster_run
        reason = death_of(run.tags)
        if reason is None or not _executed_by_its_launcher(instance, run):
            continue
        instance.report_run_failed(
            run, reason, JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION)
        )
        marked.append(run.run_id)
    return marked
