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
import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import Field, field_validator

from pipelines.reference import _Strict, load_yaml_model
from pipelines.settings import PROJECT_ROOT, settings

DEFAULT_LIMITS = PROJECT_ROOT / "sources" / "reference" / "warehouse.yaml"


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


def wait_while_another_process_holds(
    db_path: Path, timeout_s: float = 900, on_wait: Callable[[str], None] | None = None
) -> None:
    """Return once this process can open `db_path` for writing. Called under the
    exclusive advisory lock, so the process holding DuckDB's own lock is none of
    ours that took turns: it is a dbt left running by a run killed with SIGKILL (dbt
    outlives its parent and finishes its build). Its build ends; waiting for it is
    right, failing the next build on its lock is not."""
    if not db_path.is_file():
        return
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            duckdb.connect(str(db_path)).close()
            return
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error) or time.monotonic() > deadline:
                raise
            if on_wait is not None and not told:
                on_wait(f"waiting for the warehouse: {str(error).split(' See also')[0]}")
                told = True
            time.sleep(0.5)


@contextlib.contextmanager
def read_warehouse(path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, opened under the shared lock."""
    with warehouse_lock(exclusive=False, path=path) as db_path:
        con = duckdb_connection(db_path, read_only=True)
        try:
            yield con
        finally:
            con.close()


# --- DuckDB's limits --------------------------------------------------------------


def limits_path() -> Path:
    """reference/warehouse.yaml of the configuration in use, else the project's own."""
    own = settings().reference_dir / "warehouse.yaml"
    return own if own.exists() else DEFAULT_LIMITS


SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
MAX_THREADS = 256


class WarehouseLimits(_Strict):
    """reference/warehouse.yaml."""

    memory_limit: str
    threads: int | Literal["auto"] = "auto"
    monte_carlo_batch_rows: int = Field(2_000_000, ge=10_000)

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        if not SIZE.match(value):
            raise ValueError(f"must be a size such as 600MB or 2GB; got {value!r}")
        return value.replace(" ", "")

    @field_validator("threads")
    @classmethod
    def _thread_count(cls, value: int | str) -> int | str:
        if value != "auto" and not 1 <= int(value) <= MAX_THREADS:
            raise ValueError(f"must be a whole number from 1 to {MAX_THREADS}, or auto; got {value!r}")
        return value

    def settings(self) -> dict[str, str]:
        threads = self.threads if self.threads != "auto" else len(os.sched_getaffinity(0))
        return {
            "memory_limit": self.memory_limit,
            "threads": str(threads),
            "monte_carlo_batch_rows": str(self.monte_carlo_batch_rows),
        }


@functools.cache
def _limits(path: Path, mtime_ns: int) -> dict[str, str]:
    model = load_yaml_model(path, WarehouseLimits)
    return model.settings()  # type: ignore[attr-defined]


def warehouse_limits() -> dict[str, str]:
    """warehouse.yaml's figures as text ({"memory_limit": "600MB", "threads": "2", ...})."""
    path = limits_path()
    return _limits(path, path.stat().st_mtime_ns)


def duckdb_limits() -> dict[str, str]:
    """DuckDB's own settings from warehouse.yaml: memory_limit and threads."""
    limits = warehouse_limits()
    return {"memory_limit": limits["memory_limit"], "threads": limits["threads"]}


def out_of_memory_advice() -> str:
    """What to do when DuckDB's work outgrew its limit: the limit is configuration."""
    return f"DuckDB ran out of its memory limit ({warehouse_limits()['memory_limit']}): raise memory_limit in {limits_path()}"


def duckdb_connection(path: Path | str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection within warehouse.yaml's limits: every connection govperf opens."""
    return duckdb.connect(str(path), read_only=read_only, config=duckdb_limits())
