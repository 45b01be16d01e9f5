"""Dagster's SQLite event log, with its connections kept open.

A run over 15 months records about 3,500 events (every asset has one
materialization per month, every check one evaluation per month). Dagster's
own SQLite event log opens a new connection for each event and closes it after
one commit. Closing the last connection checkpoints the write-ahead log, and
each commit syncs it to disk: measured on the sample, those closes and commits
took 14 of the 37 s the run spent storing events.

This subclass keeps one connection per database (the index and each run's own)
for the life of the process, and commits with `synchronous=NORMAL`. In WAL mode
that is still crash-safe for the database (SQLite never corrupts it); what an
operating-system crash or power cut can lose is the last events before it, never
those of a process that was merely killed. Everything else, schema, queries and
file layout, is Dagster's, so a home written by this class is read by plain
Dagster and the reverse.

It is named in the dagster.yaml govperf writes (pipelines/runner.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

# The index and the few runs a process writes at once; older run databases are closed.
ENGINES_KEPT = 4


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one open connection per database (see the module)."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: dict[str, Engine] = {}
        self._engines_pid = os.getpid()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> KeptOpenSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        if os.getpid() != self._engines_pid:  # a forked child never uses its parent's connections
            self._engines = {}
            self._engines_pid = os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            if shard not in self._initialized_dbs:
                # Dagster's schema check opens connections of its own: a throwaway engine.
                setup = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                self._initdb(setup)
                setup.dispose()
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine  # most recently used last
        while len(self._engines) > ENGINES_KEPT:
            oldest = next(iter(self._engines))
            self._engines.pop(oldest).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _close_all(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines = {}

    def wipe(self) -> None:
        self._close_all()  # Dagster deletes the run databases' files
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()
