"""Writing files (Parquet above all) so that no reader ever sees half a file."""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# The writer's host and PID are in the name, so what a killed writer left can be
# told apart from what a live one is still writing (see remove_abandoned_partials).
_HOST = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())
_PARTIAL = re.compile(r"\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.\d+\.partial$")


def temporary_beside(target: Path) -> Path:
    """A name beside `target` that no other process or thread writes: two runs
    starting together may both write the same schema file."""
    return target.with_name(f"{target.name}.{_HOST}.{os.getpid()}.{threading.get_ident()}.partial")


def write_table(table: pa.Table, target: Path) -> Path:
    """Write `table` beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(target)
    pq.write_table(table, temporary)
    temporary.replace(target)
    return target


def remove_abandoned_partials(root: Path) -> list[Path]:
    """Delete the scratch files under `root` whose writer, a process on this host,
    no longer exists (it was killed before its rename). Files of live processes,
    and of other hosts, are left alone."""
    removed = []
    for folder, _, names in os.walk(root):  # os.walk, unlike rglob, ignores folders that vanish
        for name in names:
            match = _PARTIAL.search(name)
            if match and match["host"] == _HOST and not Path(f"/proc/{match['pid']}").exists():
                (Path(folder) / name).unlink(missing_ok=True)
                removed.append(Path(folder) / name)
    return removed
