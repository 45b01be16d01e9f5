"""Writing files (Parquet above all) so that no reader ever sees half a file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def temporary_beside(target: Path) -> Path:
    """A name beside `target` that no other process or thread writes: two runs
    starting together may both write the same schema file."""
    return target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")


def write_table(table: pa.Table, target: Path) -> Path:
    """Write `table` beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(target)
    pq.write_table(table, temporary)
    temporary.replace(target)
    return target
