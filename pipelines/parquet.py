"""Writing Parquet so that no reader ever sees half a file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_table(table: pa.Table, target: Path) -> Path:
    """Write `table` beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".partial")
    pq.write_table(table, temporary)
    temporary.replace(target)
    return target
