"""What each step last did its work from: the inputs of each month, per step.

A step that succeeds records, for every month (or edition) it did, a stamp of
the inputs it read: file hashes and delivery times, configuration digests, the
digest of its own code and the versions of the libraries that shape its output.
`govperf run` compares the stamps that the inputs give now with the recorded
ones (pipelines/plan.py) and redoes only the months whose stamps differ.

A month's stamp also holds the digest of the month before's (a chain), since a
month's results read earlier months: look-back imputation, year-to-date budget,
rank change, streaks and volume against history. A change in one month so makes
every later month stale, and the months redone are always a closure.

    <home>/state/<step>.json   {"<month or edition>": {stamp}, ...}

The files are a cache of what was done, not evidence (that is the ledger):
deleting them makes the next run do everything again.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipelines.parquet import temporary_beside
from pipelines.warehouse import file_lock

PACKAGE_ROOT = Path(__file__).resolve().parent


def digest(value: Any) -> str:
    """SHA-256 of a JSON value, keys sorted (a stamp, a part of one)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def files_digest(*folders: Path, suffixes: tuple[str, ...] = (".py", ".j2", ".css", ".yaml", ".yml")) -> str:
    """SHA-256 of the names and bytes of the files under `folders`: a step's own code."""
    sha = hashlib.sha256()
    for folder in folders:
        if folder.is_file():
            named = [(folder.name, folder)]
        else:  # a missing file or folder hashes as empty
            named = sorted(
                (f"{folder.name}/{p.relative_to(folder).as_posix()}", p)
                for p in folder.rglob("*")
                if p.suffix in suffixes and p.is_file() and "__pycache__" not in p.parts
            )
        for name, path in named:
            sha.update(name.encode() + b"\0")
            sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()


def library_versions(*packages: str) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "absent"
    return found


def chain(stamps: dict[str, dict]) -> dict[str, dict]:
    """Each key's stamp with the digest of the one before it (keys in order) added."""
    chained, previous = {}, None
    for key in sorted(stamps):
        chained[key] = stamps[key] | {"after": previous}
        previous = digest(chained[key])
    return chained


class StampStore:
    """The recorded stamps of one home, one JSON file per step."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / "state"

    def _path(self, step: str, pending: bool = False) -> Path:
        return self.folder / f"{step.replace('/', '__')}{'.pending' if pending else ''}.json"

    def read(self, step: str, pending: bool = False) -> dict[str, dict]:
        try:
            recorded = json.loads(self._path(step, pending).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: the step is redone
        return recorded if isinstance(recorded, dict) else {}

    def record(self, step: str, stamps: dict[str, dict], pending: bool = False) -> None:
        """Merge `stamps` into the step's file (under the store's lock: steps of parallel
        runs). `pending`: the work is done but a later step must still accept it (the
        quality suite, for a landing); `promote` then records it."""
        if stamps:
            with file_lock(self._lock(), exclusive=True):
                self._write(step, pending, self.read(step, pending) | stamps)

    def promote(self, step: str, keys: list[str]) -> None:
        """Record the pending stamps of `keys`."""
        with file_lock(self._lock(), exclusive=True):
            pending = self.read(step, pending=True)
            accepted = {key: pending.pop(key) for key in keys if key in pending}
            if accepted:
                self._write(step, False, self.read(step) | accepted)
                self._write(step, True, pending)

    def forget(self, step: str, keys: list[str]) -> None:
        """Drop the stamps of `keys` (their work failed or was undone): they are redone."""
        with file_lock(self._lock(), exclusive=True):
            recorded = self.read(step)
            if any(key in recorded for key in keys):
                self._write(step, False, {k: v for k, v in recorded.items() if k not in set(keys)})

    def _lock(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / ".lock"

    def _write(self, step: str, pending: bool, stamps: dict[str, dict]) -> None:
        path = self._path(step, pending)
        temporary = temporary_beside(path)
        temporary.write_text(json.dumps(stamps, sort_keys=True, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, path)


def changed_parts(recorded: dict | None, current: dict) -> list[str]:
    """The top-level parts of a stamp that differ from the recorded one ("new" if none)."""
    if recorded is None:
        return ["new"]
    return sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
