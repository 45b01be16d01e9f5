"""Access to the DuckDB warehouse file, one writer at a time.

DuckDB lets one process write a database file, and while it does, no other
process can open the file even to read ("Could not set lock on file"). Dagster
runs steps in separate processes, so every opening of the warehouse goes through
here: writers take an exclusive advisory lock on a sidecar file and readers a
shared one, and each waits its turn instead of failing. Ingest never opens the
warehouse at all (it writes Parquet), and neither does loading the Dagster
definitions, so the UI can stay up beside a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from pipelines.settings import settings


@contextlib.contextmanager
def warehouse_lock(exclusive: bool, path: Path | None = None, timeout_s: float = 3600) -> Iterator[Path]:
    """Hold the warehouse's advisory lock; yields the database path."""
    db_path = path or settings().duckdb_path
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(db_path.with_name(db_path.name + ".lock"), exclusive, timeout_s):
        yield db_path


NAMELESS_AFTER_S = 2.0  # how long a lock file may stay empty before its holder counts as nameless


@contextlib.contextmanager
def file_lock(
    lock_path: Path,
    exclusive: bool,
    timeout_s: float = 3600,
    holder: str = "",
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """An advisory lock between processes (flock), waiting up to timeout_s.

    An exclusive holder may write `holder` (who it is) into the lock file while it
    holds the lock; a waiter is then told, through `on_wait`, who it waits for, once
    and again whenever the holder changes."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+", encoding="utf-8") as handle:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout_s
        told = None
        nameless_since = None
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"waited {timeout_s:.0f} s for the lock {lock_path}") from None
                if on_wait is not None:
                    handle.seek(0)
                    current = handle.read().strip()
                    # A holder names itself just after taking the lock and clears its
                    # name just before letting go: an empty file is "nameless" only
                    # once it has stayed empty for a while.
                    nameless_since = None if current else (nameless_since or now)
                    if not current and now - nameless_since >= NAMELESS_AFTER_S:
                        current = "a process that did not say who it is"
                    if current and current != told:
                        on_wait(current)
                        told = current
                time.sleep(0.2)
        if exclusive and holder:
            handle.seek(0)
            handle.truncate()
            handle.write(holder + "\n")
            handle.flush()
        try:
            yield
        finally:
            if exclusive and holder:
                handle.truncate(0)  # the next waiter must not name a holder that is gone
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def read_warehouse(path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, opened under the shared lock."""
    with warehouse_lock(exclusive=False, path=path) as db_path:
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            yield con
        finally:
            con.close()
