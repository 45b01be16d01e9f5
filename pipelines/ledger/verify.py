"""Verification of a ledger: every line, the chain, the checkpoints, the pinned heads.

Each problem names its place: "ledger entry 17" (the entry with index 17, on line 18
of entries.jsonl), "ledger/entries.jsonl line 9" (a line that is not an entry at all),
"checkpoint 4" (line 4 of checkpoints.jsonl), a pinned head by its source, or
"signing key". A torn tail is a note, not a mismatch: a killed run leaves one, and
the next append sets it aside by the rule in store.py.

What anchors what: the prev chain finds an edited entry that has a successor; the
checkpoints' roots find edits, deletions and swaps up to their size; but whoever can
edit the home can also rewrite checkpoints.jsonl. The heads pinned elsewhere (printed
in published editions, recorded in Dagster's event log) and the pinned public keys
are what a rewritten ledger cannot vouch for itself against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.ledger import merkle
from pipelines.ledger.canonical import is_canonical
from pipelines.ledger.checkpoint import SignedTreeHead, tree_head_bytes
from pipelines.ledger.files import read_lines
from pipelines.ledger.keys import SigningKey, public_key_id, verify_signature

if TYPE_CHECKING:
    from pipelines.ledger.store import Ledger, LedgerEntry


@dataclass(frozen=True)
class LedgerProblem:
    where: str
    what: str
    severity: str = "mismatch"  # or "note": reported, but not a sign of tampering

    @property
    def is_mismatch(self) -> bool:
        return self.severity == "mismatch"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" + (" (note)" if self.severity == "note" else "")

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what, "severity": self.severity}


def mismatches(problems: Iterable[LedgerProblem]) -> list[LedgerProblem]:
    return [problem for problem in problems if problem.is_mismatch]


def _short(public_key_hex: str) -> str:
    try:
        return public_key_id(public_key_hex)[:16]
    except ValueError:
        return repr(public_key_hex[:16])


def _entries_label(first: int, last: int) -> str:
    return f"ledger entry {first}" if first == last else f"ledger entries {first}-{last}"


def verify_ledger(
    ledger: Ledger,
    pinned_heads: Iterable[dict[str, Any]] = (),
    pinned_keys: Iterable[str] = (),
    current_public_key: str | SigningKey | None = None,
) -> list[LedgerProblem]:
    if isinstance(current_public_key, SigningKey):
        current_public_key = current_public_key.public_key_hex
    pinned_keys = set(pinned_keys)
    pinned_heads = list(pinned_heads)
    problems: list[LedgerProblem] = []

    read = read_lines(ledger.entries_path)
    leaves = [merkle.leaf_hash(line) for line in read.lines]
    if read.tail:
        problems.append(_torn_note(ledger, ledger.entries_path, len(read.lines) + 1, read.tail))
    parsed = _check_lines(ledger, read.lines, problems)
    _check_sequence(parsed, len(read.lines), problems)
    _check_chain(parsed, problems)

    heads = _read_checkpoints(ledger, problems)
    sizes = {head.tree_size for _, head in heads} | {h.get("tree_size") for h in pinned_heads}
    roots = merkle.prefix_roots(leaves, {s for s in sizes if isinstance(s, int) and 0 <= s <= len(leaves)})
    _check_checkpoints(heads, roots, len(leaves), current_public_key, pinned_keys, problems)
    _check_pinned_heads(pinned_heads, heads, roots, len(leaves), current_public_key, problems)
    if current_public_key and pinned_keys and current_public_key not in pinned_keys:
        pinned = ", ".join(sorted(_short(k) for k in pinned_keys))
        problems.append(
            LedgerProblem(
                "signing key",
                f"the current signing key {_short(current_public_key)} is none of the keys pinned by published "
                f"editions and runs ({pinned}): the signing key was replaced",
            )
        )
    return problems


def _torn_note(ledger: Ledger, path, line_number: int, tail: bytes) -> LedgerProblem:
    return LedgerProblem(
        ledger.where(path, line_number),
        f"a torn last line of {len(tail)} bytes, without its newline (a write cut short by a killed run); "
        "the next append or checkpoint sets it aside in torn/ and records that",
        "note",
    )


def _check_lines(ledger: Ledger, lines: list[bytes], problems: list[LedgerProblem]) -> list[LedgerEntry | None]:
    from pipelines.ledger.store import EntryFormatError, parse_entry

    parsed: list[LedgerEntry | None] = []
    for number, line in enumerate(lines, start=1):
        try:
            entry = parse_entry(line)
        except EntryFormatError as error:
            problems.append(LedgerProblem(ledger.where(ledger.entries_path, number), f"not a ledger entry: {error}"))
            parsed.append(None)
            continue
        if not is_canonical(line):
            problems.append(
                LedgerProblem(
                    f"ledger entry {entry.index}",
                    f"line {number} is not canonical JSON (RFC 8785), so not as the ledger wrote it: edited by hand",
                )
            )
        parsed.append(entry)
    return parsed


def _check_sequence(parsed: list[LedgerEntry | None], line_count: int, problems: list[LedgerProblem]) -> None:
    """Each index once, none missing below the highest, each on its own line."""
    lines_of: dict[int, list[int]] = {}
    for position, entry in enumerate(parsed):
        if entry is not None:
            lines_of.setdefault(entry.index, []).append(position + 1)
    for index, numbers in sorted(lines_of.items()):
        if len(numbers) > 1:
            problems.append(LedgerProblem(f"ledger entry {index}", f"appears {len(numbers)} times, on lines {numbers}"))
    unparsed = {position for position, entry in enumerate(parsed) if entry is None}
    highest = max(lines_of, default=-1)
    missing = [i for i in range(highest + 1) if i not in lines_of and i not in unparsed]
    for first, last in _runs(missing):
        after = lines_of.get(first - 1, [0])[0]
        problems.append(
            LedgerProblem(
                _entries_label(first, last),
                f"missing: deleted from the ledger (line {after + 1} holds entry {last + 1}"
                + (f", after entry {first - 1})" if first else ")"),
            )
        )
    if missing or any(len(n) > 1 for n in lines_of.values()):
        return  # positions shifted: the problems above already name the cause
    for position, entry in enumerate(parsed):
        if entry is not None and entry.index != position:
            problems.append(
                LedgerProblem(
                    f"ledger entry {entry.index}",
                    f"is on line {position + 1}, where entry {position} belongs: entries were moved or swapped",
                )
            )


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _check_chain(parsed: list[LedgerEntry | None], problems: list[LedgerProblem]) -> None:
    """Entry i's prev is the hash of entry i-1, looked up by index: a swap is named once
    (as moved), and an edit names the edited entry."""
    by_index = {entry.index: entry for entry in parsed if entry is not None}
    for entry in parsed:
        if entry is None:
            continue
        if entry.index == 0:
            if entry.prev != "":
                problems.append(LedgerProblem("ledger entry 0", 'the first entry must have prev ""; it was edited'))
            continue
        before = by_index.get(entry.index - 1)
        if before is not None and entry.prev != before.digest:
            problems.append(
                LedgerProblem(
                    f"ledger entry {before.index}",
                    f"changed after it was written: its hash is not the one entry {entry.index} recorded "
                    f"as prev (entry {before.index} was edited, or entry {entry.index}'s prev)",
                )
            )


def _read_checkpoints(ledger: Ledger, problems: list[LedgerProblem]) -> list[tuple[int, SignedTreeHead]]:
    read = read_lines(ledger.checkpoints_path)
    if read.tail:
        problems.append(_torn_note(ledger, ledger.checkpoints_path, len(read.lines) + 1, read.tail))
    heads = []
    for number, line in enumerate(read.lines, start=1):
        try:
            data = json.loads(line)
            head = SignedTreeHead.from_dict(data)
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            problems.append(LedgerProblem(f"checkpoint {number}", f"line {number} is not a signed tree head: {error}"))
            continue
        if not is_canonical(line):
            problems.append(LedgerProblem(f"checkpoint {number}", "not canonical JSON (RFC 8785): edited by hand"))
        heads.append((number, head))
    return heads


def _check_checkpoints(
    heads: list[tuple[int, SignedTreeHead]],
    roots: dict[int, bytes],
    entry_count: int,
    current_public_key: str | None,
    pinned_keys: set[str],
    problems: list[LedgerProblem],
) -> None:
    good_size, previous_size = 0, 0  # entries below good_size match a checkpoint
    for number, head in heads:
        where = f"checkpoint {number}"
        if not head.verify():
            problems.append(
                LedgerProblem(where, "its signature does not verify under the key it names: the head was edited")
            )
        if current_public_key and head.public_key != current_public_key:
            problems.append(
                LedgerProblem(
                    where,
                    f"signed by key {_short(head.public_key)}, not by the current signing key "
                    f"{_short(current_public_key)}: the signing key was replaced",
                )
            )
        if pinned_keys and head.public_key not in pinned_keys:
            problems.append(
                LedgerProblem(
                    where,
                    f"signed by key {_short(head.public_key)}, which no published edition or run pins",
                )
            )
        if head.tree_size < previous_size:
            problems.append(
                LedgerProblem(
                    where,
                    f"covers {head.tree_size} entries, fewer than the {previous_size} of the checkpoint before: "
                    "checkpoints were edited or reordered",
                )
            )
        previous_size = max(previous_size, head.tree_size)
        if head.tree_size > entry_count:
            problems.append(
                LedgerProblem(
                    where,
                    f"covers {head.tree_size} entries, the ledger has {entry_count}: the ledger was truncated "
                    f"({_entries_label(entry_count, head.tree_size - 1)} are gone)",
                )
            )
        elif roots.get(head.tree_size, b"").hex() != head.root_hash:
            problems.append(
                LedgerProblem(
                    where,
                    f"the first {head.tree_size} entries no longer have the root it signed: "
                    f"{_entries_label(min(good_size, head.tree_size - 1), head.tree_size - 1)} "
                    "hold a change (or entries before were moved or deleted)",
                )
            )
        else:
            good_size = max(good_size, head.tree_size)


def _check_pinned_heads(
    pinned_heads: list[dict[str, Any]],
    heads: list[tuple[int, SignedTreeHead]],
    roots: dict[int, bytes],
    entry_count: int,
    current_public_key: str | None,
    problems: list[LedgerProblem],
) -> None:
    recorded = {(head.tree_size, head.root_hash) for _, head in heads}
    for number, pinned in enumerate(pinned_heads, start=1):
        where = str(pinned.get("source") or f"pinned tree head {number}")
        size, root_hash = pinned.get("tree_size"), pinned.get("root_hash")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(root_hash, str):
            problems.append(LedgerProblem(where, f"a pinned head needs a tree_size and a root_hash; it has {pinned!r}"))
            continue
        if size > entry_count:
            problems.append(
                LedgerProblem(
                    where,
                    f"ledger truncated: a published edition pins tree size {size}, the ledger has {entry_count} entries",
                )
            )
        elif roots[size].hex() != root_hash:
            problems.append(
                LedgerProblem(
                    where,
                    f"the first {size} entries of the ledger do not have the root it pins: "
                    "entries before it were changed, deleted or moved",
                )
            )
        elif (size, root_hash) not in recorded:
            problems.append(
                LedgerProblem(
                    where,
                    f"no checkpoint in checkpoints.jsonl has this head (size {size}): checkpoints were deleted or edited",
                )
            )
        public_key = pinned.get("public_key")
        if "signature" in pinned:
            signed = isinstance(public_key, str) and isinstance(pinned.get("timestamp"), str)
            if not signed or not verify_signature(
                public_key, tree_head_bytes(size, root_hash, pinned["timestamp"], public_key), str(pinned["signature"])
            ):
                problems.append(LedgerProblem(where, "the pinned head's signature does not verify: it was edited"))
        if isinstance(public_key, str) and current_public_key and public_key != current_public_key:
            problems.append(
                LedgerProblem(
                    where,
                    f"pins key {_short(public_key)}, the current signing key is {_short(current_public_key)}: "
                    "the signing key was replaced",
                )
            )
