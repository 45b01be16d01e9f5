"""Append-only JSON-lines files under $GOVPERF_HOME/state: what people record
(finding marks, appeals and their decisions, first drafts), kept whatever reruns
do to the marts.

One JSON object per line, appended under a lock, never rewritten: the file is its
own history. A damaged line is an error naming the file and line, so a record is
never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def append(
    path: Path,
    record: dict[str, Any] | Callable[[list[dict[str, Any]]], dict[str, Any]],
    before_writing: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Append `record`, or what `record(records already there)` returns: called under
    the lock, it may number the record or refuse it (by raising), and two writers
    cannot both pass it. `before_writing(record)`, under the same lock, records it
    elsewhere first (the ledger), so that both places hold the records in one order.
    Returns the record appended."""
    from pipelines.warehouse import file_lock  # here: the CLI imports the modules that use this one

    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock"), exclusive=True):
        if callable(record):
            record = record(read(path))
        if before_writing is not None:
            before_writing(record)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
    return record


def read(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every record, in the order written; each must be an object with `required` keys."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}, column {error.colno}: not JSON ({error.msg})") from None
        missing = [key for key in required if not isinstance(record, dict) or key not in record]
        if missing:
            raise ValueError(f"{path}, line {number}: the record lacks {', '.join(missing)}")
        records.append(record)
    return records
