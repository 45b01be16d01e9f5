"""The Dagster run queue: how many runs launched from the UI, its schedules and
the new-extract sensor run at once.

The figure comes from ``reference/run_queue.yaml`` under GOVPERF_CONFIG, or the
project's own (sources/reference/run_queue.yaml) when a configuration has none.
Two limits are fixed, because no machine makes other values safe:

- one run at a time writes the warehouse: DuckDB lets one process open the file
  for writing, and a second writer fails on the lock instead of waiting;
- one run at a time per month: two ingests of one month would land it twice over.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import field_validator

from pipelines.reference import _Strict, load_yaml_model
from pipelines.settings import PROJECT_ROOT, settings

DEFAULT_CONFIG = PROJECT_ROOT / "sources" / "reference" / "run_queue.yaml"
# Jobs whose runs write the warehouse carry this tag (pipelines/automation.py).
WAREHOUSE_WRITER_TAGS = {"govperf/warehouse": "write"}
PARTITION_TAG = "dagster/partition"
MAX_RUNS = 64


class RunQueueConfig(_Strict):
    """sources/reference/run_queue.yaml."""

    max_concurrent_runs: int | str = "auto"

    @field_validator("max_concurrent_runs", mode="before")
    @classmethod
    def _count_or_auto(cls, value: object) -> int | str:
        if value == "auto" or (type(value) is int and 1 <= value <= MAX_RUNS):
            return value
        raise ValueError(f"must be a whole number from 1 to {MAX_RUNS}, or auto; got {value!r}")

    def runs_at_once(self) -> int:
        if isinstance(self.max_concurrent_runs, int):
            return self.max_concurrent_runs
        return max(1, _usable_cores() // 2)


def _usable_cores() -> int:
    """The cores this process may use (a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def config_path() -> Path:
    own = settings().reference_dir / "run_queue.yaml"
    return own if own.exists() else DEFAULT_CONFIG


def load_config(path: Path | None = None) -> RunQueueConfig:
    return load_yaml_model(path or config_path(), RunQueueConfig)  # type: ignore[return-value]


def tag_concurrency_limits() -> list[dict]:
    return [
        *({"key": key, "value": value, "limit": 1} for key, value in WAREHOUSE_WRITER_TAGS.items()),
        {"key": PARTITION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    ]
