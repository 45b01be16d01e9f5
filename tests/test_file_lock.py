"""The advisory lock tells a waiter who holds it, and never calls a holder
nameless in the moment between its taking the lock and writing its name."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

from pipelines.warehouse import NAMELESS_AFTER_S, file_lock


def _hold(lock_path: Path, name_after_s: float | None, hold_s: float, taken: threading.Event) -> None:
    """Hold the lock for hold_s, writing a name after name_after_s (never if None)."""
    with lock_path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        taken.set()
        if name_after_s is not None:
            time.sleep(name_after_s)
            handle.write("run R1 (pid 1)\n")
            handle.flush()
        time.sleep(hold_s - (name_after_s or 0.0))
        fcntl.flock(handle, fcntl.LOCK_UN)


def _waits(tmp_path: Path, name_after_s: float | None, hold_s: float) -> list[str]:
    lock_path = tmp_path / "edition.lock"
    taken = threading.Event()
    holder = threading.Thread(target=_hold, args=(lock_path, name_after_s, hold_s, taken))
    holder.start()
    taken.wait()
    told: list[str] = []
    with file_lock(lock_path, exclusive=True, holder="run R2", on_wait=told.append):
        pass
    holder.join()
    return told


def test_a_holder_still_writing_its_name_is_not_called_nameless(tmp_path: Path) -> None:
    assert _waits(tmp_path, name_after_s=0.5, hold_s=1.5) == ["run R1 (pid 1)"]


def test_a_holder_that_never_names_itself_is_reported_as_such(tmp_path: Path) -> None:
    told = _waits(tmp_path, name_after_s=None, hold_s=NAMELESS_AFTER_S + 1)
    assert told == ["a process that did not say who it is"]


def test_a_build_waits_for_a_process_still_holding_duckdbs_own_lock(tmp_path: Path) -> None:
    """A dbt left running by a killed run holds DuckDB's lock on the warehouse; the
    next build waits for it to finish instead of failing on 'Could not set lock'."""
    import subprocess
    import sys

    import duckdb

    from pipelines.warehouse import wait_while_another_process_holds

    db = tmp_path / "govperf.duckdb"
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    told: list[str] = []
    started = time.monotonic()
    wait_while_another_process_holds(db, timeout_s=60, on_wait=told.append)
    # It returned once the lock was free: the warehouse opens at once. (Not poll(): the
    # holder releases the lock while it exits, and under load poll() may still say it runs.)
    duckdb.connect(str(db)).close()
    assert time.monotonic() - started > 1
    assert len(told) == 1 and f"PID {holder.pid}" in told[0]
    holder.wait(timeout=30)
