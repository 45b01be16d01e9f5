"""The ledger's files on disk: the lock, line reading, and torn tails.

Every write to a ledger file is one `os.write` of whole newline-terminated lines,
then fsync. A process killed in the middle can therefore leave only one thing
behind: a last line without its newline (a torn tail). Everything before the last
newline was written in full.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.ledger.canonical import sha256_hex


class LedgerCorrupt(RuntimeError):
    """A complete line of a ledger file is not what was written: tampering or damage.
    The ledger refuses to write after it; it never repairs a complete line."""


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """flock on its own open file: serialises processes, and threads of one process too
    (each call opens the file anew, and flock locks belong to the open file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class LinesRead:
    lines: list[bytes]  # complete lines, without their newlines
    tail: bytes  # the bytes after the last newline: b"" unless a write was torn


def read_lines(path: Path) -> LinesRead:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LinesRead([], b"")
    lines = data.split(b"\n")
    tail = lines.pop()
    return LinesRead(lines, tail)


def write_lines(fd: int, data: bytes) -> None:
    """One write of whole lines (a short write, e.g. on a full disk, is an error),
    then fsync. Tests replace it in a child process to tear a write for real."""
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(f"the ledger wrote {written} of {len(data)} bytes (disk full?)")
    os.fsync(fd)


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside_tail(path: Path, torn_dir: Path, ledger_folder: Path) -> dict | None:
    """Cut a torn tail off `path` and keep its bytes in torn_dir/<sha256>.partial.
    Returns the body of the ledger entry that records it, or None when the file ends
    with a newline. Call it under the ledger's lock."""
    read = read_lines(path)
    if not read.tail:
        return None
    digest = sha256_hex(read.tail)
    torn_dir.mkdir(parents=True, exist_ok=True)
    kept = torn_dir / f"{digest}.partial"
    if not kept.exists():  # the same bytes torn twice are kept once
        temporary = kept.with_suffix(".tmp")
        temporary.write_bytes(read.tail)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, kept)
        fsync_folder(torn_dir)
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, os.fstat(fd).st_size - len(read.tail))
        os.fsync(fd)
    finally:
        os.close(fd)
    return {
        "file": path.name,
        "bytes": len(read.tail),
        "sha256": digest,
        "kept_at": kept.relative_to(ledger_folder).as_posix(),
    }
