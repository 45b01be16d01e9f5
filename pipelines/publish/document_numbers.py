"""文号: the document number each published edition is issued under (绩效办〔2026〕3号).

    published/document_numbers.jsonl    every number allocated, one JSON line each, in order:
                                        year, n, number, period, approved_by, approved_at, allocated_at
    published/.document_numbers.lock    held (flock) while a number is allocated

The rules:
- An edition's first published revision takes the next number of its approval's
  year: one more than the largest `n` allocated in that year, formatted by
  bulletin.yaml's `document_number` (prefix and format).
- A number is never reused. It is recorded (one write, then fsync) before the edition
  is drawn; an approval that fails afterwards leaves its number allocated, unused, and
  the next approval takes the one after (the register says for which period each was
  allocated, so a gap can be accounted for). A number already printed in a published
  manifest is skipped too, should the register be lost.
- Numbers are allocated under an exclusive lock of the archive, so approvals at the
  same time, in threads or processes, never get the same number.
- A later revision (r2, r3 ...) keeps the number of its edition (that of the earliest
  revision carrying one) and is labelled 第 N 版. Every revision's manifest holds
  `document_number` and `version_label` (第 1 版 for the first).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipelines.ledger.files import exclusive_lock, read_lines, write_lines
from pipelines.publish.config import DocumentNumber, Edition

REGISTER = "document_numbers.jsonl"
LOCK = ".document_numbers.lock"


class RegisterDamaged(Exception):
    """A line of the register is not what an allocation writes: no number is given out."""


def version_label(revision: int) -> str:
    return f"第 {revision} 版"


def allocated(published: Path) -> list[dict[str, Any]]:
    """The register's entries, oldest first (a torn last line, left by a killed
    allocation that handed out no number, is not one)."""
    path = published / REGISTER
    entries = []
    for number, line in enumerate(read_lines(path).lines, start=1):
        try:
            entry = json.loads(line)
            int(entry["year"]), int(entry["n"]), str(entry["number"])
        except (ValueError, KeyError, TypeError):
            raise RegisterDamaged(
                f"{path}, line {number}: not a document-number entry; no number is allocated until it is mended"
            ) from None
        entries.append(entry)
    return entries


def _printed(published: Path) -> set[str]:
    """The numbers that published manifests carry."""
    numbers = set()
    for manifest in published.glob("*/*/r*/manifest.json"):
        try:
            number = json.loads(manifest.read_text(encoding="utf-8")).get("document_number")
        except (OSError, ValueError):
            continue  # verify names an unreadable manifest
        if number:
            numbers.add(number)
    return numbers


def allocate(
    published: Path, config: DocumentNumber, edition: Edition, approved_by: str, approved_at: dt.datetime
) -> str:
    """The next number of `approved_at`'s year, recorded in the register before it is returned."""
    published.mkdir(parents=True, exist_ok=True)
    path = published / REGISTER
    with exclusive_lock(published / LOCK):
        entries = allocated(published)
        _cut_torn_tail(path)
        year = approved_at.year
        taken = _printed(published) | {entry["number"] for entry in entries}
        n = max((int(entry["n"]) for entry in entries if int(entry["year"]) == year), default=0) + 1
        while config.number(year, n) in taken:
            n += 1
        number = config.number(year, n)
        entry = {
            "year": year,
            "n": n,
            "number": number,
            "period": edition.key,
            "approved_by": approved_by,
            "approved_at": approved_at.strftime("%Y-%m-%d %H:%M"),
            "allocated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            write_lines(fd, (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
    return number


def number_for(
    published: Path,
    config: DocumentNumber,
    edition: Edition,
    earlier: Iterable[Mapping[str, Any]],
    approved_by: str,
    approved_at: dt.datetime,
) -> str:
    """The edition's number: that of its earliest revision carrying one (`earlier`: its
    published manifests, oldest first), else a new one."""
    kept = next((revision["document_number"] for revision in earlier if revision.get("document_number")), None)
    return kept or allocate(published, config, edition, approved_by, approved_at)


def _cut_torn_tail(path: Path) -> None:
    """A line without its newline was cut short as it was written: its allocation never
    returned, so no edition carries its number. Dropped, so the next line starts clean."""
    tail = read_lines(path).tail
    if tail:
        fd = os.open(path, os.O_RDWR)
        try:
            os.ftruncate(fd, os.fstat(fd).st_size - len(tail))
            os.fsync(fd)
        finally:
            os.close(fd)
