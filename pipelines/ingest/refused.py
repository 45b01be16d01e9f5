"""The lines of a file refused as a whole, for the quarantine, read as a stream.

A refused CSV (wrong encoding, no header, a workbook too large…) puts each of
its non-blank lines in quarantine with the file's message, so that rows read =
accepted + quarantined still holds. The lines are read one at a time and each
is cut at MAX_RAW_LINE_BYTES (the archived original keeps every byte), so a
hostile file costs no more memory here than anywhere else. A workbook has no
text lines: it is one quarantine row, line 0 (the file as a whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MAX_RAW_LINE_BYTES = 64 * 1024
_BATCH_ROWS = 10_000


def _csv_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line."""
    number = 0
    with path.open("rb") as handle:
        while raw := handle.readline(MAX_RAW_LINE_BYTES):
            cut = not raw.endswith(b"\n")
            if cut:  # skip the rest of an over-long line
                while (rest := handle.readline(MAX_RAW_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
            for text in raw.decode(encoding, errors="replace").splitlines() or [""]:
                number += 1
                if text.strip():
                    yield number, f"{text}…" if cut else text


def write_refused_lines(
    path: Path, by_line: bool, encoding: str | None, target: Path, schema: pa.Schema, fixed: dict[str, object]
) -> int:
    """Write the quarantine rows of a refused file to `target` (Parquet) in
    batches, a row per non-blank line of a text file (`by_line`), else one row for
    the whole file; `fixed` gives the columns equal on every row. Returns the row count."""
    if by_line:
        lines: Iterator[tuple[int, str]] = _csv_lines(path, encoding or "utf-8")
    else:
        lines = iter([(0, "")])
    count = 0
    with pq.ParquetWriter(target, schema) as writer:
        batch: list[tuple[int, str]] = []
        for item in lines:
            batch.append(item)
            if len(batch) == _BATCH_ROWS:
                writer.write_table(_batch_table(batch, schema, fixed))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(_batch_table(batch, schema, fixed))
            count += len(batch)
    return count


def _batch_table(batch: list[tuple[int, str]], schema: pa.Schema, fixed: dict[str, object]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [value] * len(batch) for name, value in fixed.items()}
    columns["line"] = [n for n, _ in batch]
    columns["raw_text"] = [t for _, t in batch]
    return pa.table(columns, schema=schema)
