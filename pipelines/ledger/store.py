"""The ledger: an append-only, hash-linked, Merkle-tree log of evidence events.

Files, in one folder (`settings().ledger_dir`, i.e. `<home>/ledger`):

- `entries.jsonl`: one entry per line, RFC 8785 canonical JSON, newline-terminated:
  `{"index": n, "kind": "...", "at": "2026-03-01T08:00:00Z", "prev": "<sha256 hex of
  the previous line>", "body": {...}}` ("prev" is "" for entry 0). Entry n is leaf n of
  an RFC 9162 Merkle tree; its leaf hash is SHA-256(0x00 || the line's bytes).
- `checkpoints.jsonl`: signed tree heads (checkpoint.py), one per line.
- `ledger.lock`: every append and every checkpoint holds an flock on it, so writes
  from several processes and threads are serialised.
- `torn/`: torn tails set aside (below).

The rule for torn tails. Each write is one `os.write` of whole lines and an fsync, so
a killed process can leave only a last line without its newline. The next append or
checkpoint, under the lock, cuts that tail from its file, keeps its bytes in
`torn/<sha256>.partial`, and appends an entry `{"kind": "torn_tail_set_aside",
"body": {"file", "bytes", "sha256", "kept_at"}}`: nothing is silently dropped. A
COMPLETE line (newline-terminated) that does not parse, is not canonical, or whose
index or prev does not follow, is not torn: it is tampering or damage, and the
ledger refuses to append after it (`LedgerCorrupt`, naming the line) rather than
repair it. `verify()` (verify.py) names every such problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.ledger import files, merkle
from pipelines.ledger.canonical import canonical_bytes, is_canonical, sha256_hex
from pipelines.ledger.checkpoint import SignedTreeHead
from pipelines.ledger.files import LedgerCorrupt
from pipelines.ledger.keys import SigningKey

if TYPE_CHECKING:
    from pipelines.ledger.verify import LedgerProblem

ENTRY_FIELDS = ("index", "kind", "at", "prev", "body")
TORN_TAIL_KIND = "torn_tail_set_aside"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LedgerEntry:
    index: int
    kind: str
    at: str
    prev: str
    body: dict[str, Any]
    line: bytes = field(repr=False)  # the canonical JSON, without its newline
    leaf_hash: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        """SHA-256 hex of the line: what the next entry's `prev` holds."""
        return sha256_hex(self.line)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "at": self.at, "prev": self.prev, "body": self.body}


class EntryFormatError(ValueError):
    pass


def parse_entry(line: bytes) -> LedgerEntry:
    """The entry on one line, or EntryFormatError saying what is wrong with its shape.
    (Whether it is canonical, and whether it follows its predecessor, is checked apart.)"""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EntryFormatError(f"not JSON ({error})") from error
    if not isinstance(data, dict) or sorted(data) != sorted(ENTRY_FIELDS):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise EntryFormatError(f"an entry has exactly the fields {', '.join(ENTRY_FIELDS)}; this has {keys}")
    types = {"index": int, "kind": str, "at": str, "prev": str, "body": dict}
    for name, wanted in types.items():
        if not isinstance(data[name], wanted) or isinstance(data[name], bool):
            raise EntryFormatError(f"{name} is {data[name]!r}, not a {wanted.__name__}")
    return LedgerEntry(
        data["index"], data["kind"], data["at"], data["prev"], data["body"], bytes(line), merkle.leaf_hash(line)
    )


def make_entry(index: int, kind: str, at: str, prev: str, body: dict[str, Any]) -> LedgerEntry:
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a ledger entry's kind must be non-empty text, not {kind!r}")
    if not isinstance(body, dict):
        raise ValueError(f"a ledger entry's body must be a dict, not a {type(body).__name__}")
    line = canonical_bytes({"index": index, "kind": kind, "at": at, "prev": prev, "body": body})
    return parse_entry(line)  # the body as it reads back (tuples as lists, dates as text)


class Ledger:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.entries_path = self.folder / "entries.jsonl"
        self.checkpoints_path = self.folder / "checkpoints.jsonl"
        self.lock_path = self.folder / "ledger.lock"
        self.torn_dir = self.folder / "torn"

    def __repr__(self) -> str:
        return f"Ledger({self.folder})"

    def _files(self) -> tuple[Path, Path]:
        return (self.entries_path, self.checkpoints_path)

    def where(self, path: Path, line_number: int) -> str:
        """'ledger/entries.jsonl line 9': a place an auditor can open."""
        return f"{self.folder.name}/{path.name} line {line_number}"

    # ------------------------------------------------------------ writing

    def append(self, kind: str, body: dict[str, Any]) -> LedgerEntry:
        return self.append_many([(kind, body)])[0]

    def append_many(self, items: list[tuple[str, dict[str, Any]]]) -> list[LedgerEntry]:
        """Appends the entries in order, under one lock, in one write and one fsync.
        Returns them (not any torn-tail entry written before them)."""
        items = list(items)
        with files.exclusive_lock(self.lock_path):
            return self._append_locked(items)

    def _append_locked(self, items: list[tuple[str, dict[str, Any]]]) -> list[LedgerEntry]:
        self.folder.mkdir(parents=True, exist_ok=True)
        # the last complete line is checked first: a refused append leaves every file as it was
        last = self._checked_last(files.read_lines(self.entries_path).lines)
        at = utc_now()
        for kind, body in items:  # a body with no canonical form is refused before anything moves
            make_entry(0, kind, at, "", body)
        set_aside = [files.set_aside_tail(path, self.torn_dir, self.folder) for path in self._files()]
        torn = [(TORN_TAIL_KIND, body) for body in set_aside if body]
        index, prev = (last.index + 1, last.digest) if last else (0, "")
        written: list[LedgerEntry] = []
        for kind, body in torn + items:
            entry = make_entry(index, kind, at, prev, body)
            written.append(entry)
            index, prev = index + 1, entry.digest
        if not written:
            return []
        new_file = not self.entries_path.exists()
        fd = os.open(self.entries_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            files.write_lines(fd, b"".join(entry.line + b"\n" for entry in written))
        finally:
            os.close(fd)
        if new_file:
            files.fsync_folder(self.folder)
        return written[len(torn) :]

    def _checked_last(self, lines: list[bytes]) -> LedgerEntry | None:
        """The last complete entry, after checking that it is whole and follows the one
        before: an append must never chain onto a changed or misplaced line."""
        if not lines:
            return None
        number = len(lines)
        last = self._parse_or_refuse(lines[-1], number)
        if last.index != number - 1:
            raise LedgerCorrupt(
                f"{self.where(self.entries_path, number)}: holds entry {last.index}, but it is line {number} "
                f"(entry {number - 1} expected); entries were deleted, added or moved. Run `govperf verify`."
            )
        expected_prev = sha256_hex(lines[-2]) if number > 1 else ""
        if last.prev != expected_prev:
            raise LedgerCorrupt(
                f"{self.where(self.entries_path, number)}: its prev is not the hash of line {number - 1}; "
                "the ledger was changed. Run `govperf verify`."
            )
        return last

    def _parse_or_refuse(self, line: bytes, number: int) -> LedgerEntry:
        try:
            entry = parse_entry(line)
        except EntryFormatError as error:
            raise LedgerCorrupt(
                f"{self.where(self.entries_path, number)}: a complete line that is not a ledger entry ({error}); "
                "it is not a torn write, so the ledger will not repair it. Run `govperf verify`."
            ) from error
        if not is_canonical(line):
            raise LedgerCorrupt(
                f"{self.where(self.entries_path, number)}: not in canonical JSON, so not as the ledger wrote it. "
                "Run `govperf verify`."
            )
        return entry

    def checkpoint(self, key: SigningKey) -> SignedTreeHead:
        """Signs the tree head over every entry and appends it to checkpoints.jsonl.
        Under the lock; refuses (LedgerCorrupt) when the chain is broken or the ledger
        no longer extends the latest checkpoint, so a key never vouches for a rewrite."""
        with files.exclusive_lock(self.lock_path):
            self._append_locked([])  # sets aside torn tails, recording them
            lines = files.read_lines(self.entries_path).lines
            leaves = self._checked_leaves(lines)
            latest = self.latest_checkpoint()
            if latest is not None:
                self._refuse_unless_extends(latest, leaves)
            head = SignedTreeHead.sign(key, len(leaves), merkle.root(leaves).hex(), utc_now())
            new_file = not self.checkpoints_path.exists()
            fd = os.open(self.checkpoints_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                files.write_lines(fd, canonical_bytes(head.to_dict()) + b"\n")
            finally:
                os.close(fd)
            if new_file:
                files.fsync_folder(self.folder)
            return head

    def _checked_leaves(self, lines: list[bytes]) -> list[bytes]:
        leaves, prev = [], ""
        for number, line in enumerate(lines, start=1):
            try:
                entry = parse_entry(line)
            except EntryFormatError as error:
                raise LedgerCorrupt(f"{self.where(self.entries_path, number)}: not a ledger entry ({error})") from error
            if entry.index != number - 1 or entry.prev != prev:
                raise LedgerCorrupt(
                    f"{self.where(self.entries_path, number)}: entry {entry.index} does not follow line "
                    f"{number - 1} (index or prev); the ledger was changed. Run `govperf verify`."
                )
            leaves.append(entry.leaf_hash)
            prev = sha256_hex(line)
        return leaves

    def _refuse_unless_extends(self, latest: SignedTreeHead, leaves: list[bytes]) -> None:
        if latest.tree_size > len(leaves):
            raise LedgerCorrupt(
                f"the latest checkpoint covers {latest.tree_size} entries, the ledger has {len(leaves)}: "
                "the ledger was truncated. Run `govperf verify`."
            )
        if merkle.root(leaves[: latest.tree_size]).hex() != latest.root_hash:
            raise LedgerCorrupt(
                f"the first {latest.tree_size} entries no longer have the root the latest checkpoint signed: "
                "the ledger was changed. Run `govperf verify`."
            )

    # ------------------------------------------------------------ reading

    def entry_lines(self) -> files.LinesRead:
        return files.read_lines(self.entries_path)

    def entries(self) -> list[LedgerEntry]:
        """Every complete entry, in file order (a torn tail is not an entry)."""
        out = []
        for number, line in enumerate(self.entry_lines().lines, start=1):
            try:
                out.append(parse_entry(line))
            except EntryFormatError as error:
                raise LedgerCorrupt(f"{self.where(self.entries_path, number)}: not a ledger entry ({error})") from error
        return out

    def size(self) -> int:
        return len(self.entry_lines().lines)

    def last(self, kind: str, where: Callable[[dict[str, Any]], bool] | None = None) -> LedgerEntry | None:
        """The latest entry of that kind whose body passes `where`."""
        for entry in reversed(self.entries()):
            if entry.kind == kind and (where is None or where(entry.body)):
                return entry
        return None

    def leaf_hashes(self) -> list[bytes]:
        return [merkle.leaf_hash(line) for line in self.entry_lines().lines]

    def root(self, tree_size: int | None = None) -> bytes:
        leaves = self.leaf_hashes()
        return merkle.root(leaves if tree_size is None else leaves[:tree_size])

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return merkle.inclusion_proof(self.leaf_hashes(), index, tree_size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(self.leaf_hashes(), old_size, new_size)

    def checkpoints(self) -> list[SignedTreeHead]:
        out = []
        for number, line in enumerate(files.read_lines(self.checkpoints_path).lines, start=1):
            try:
                out.append(SignedTreeHead.from_dict(json.loads(line)))
            except (UnicodeDecodeError, ValueError, TypeError) as error:
                raise LedgerCorrupt(
                    f"{self.where(self.checkpoints_path, number)}: not a signed tree head ({error})"
                ) from error
        return out

    def latest_checkpoint(self) -> SignedTreeHead | None:
        heads = self.checkpoints()
        return heads[-1] if heads else None

    def verify(
        self,
        pinned_heads: Iterable[dict[str, Any]] = (),
        pinned_keys: Iterable[str] = (),
        current_public_key: str | SigningKey | None = None,
    ) -> list[LedgerProblem]:
        """Every problem found, each naming its place (verify.py). Empty when whole.
        A pinned head is a dict with tree_size and root_hash (and, if given, timestamp,
        public_key and signature, checked too; and source, the place it was pinned,
        which names it in the problems)."""
        from pipelines.ledger.verify import verify_ledger

        return verify_ledger(self, pinned_heads, pinned_keys, current_public_key)
