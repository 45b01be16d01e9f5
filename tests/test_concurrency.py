"""DuckDB allows one writer per file. Two runs, each with the multiprocess
executor, over different months at the same time must both finish: ingest
writes only Parquet and every opening of the warehouse waits for its lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from pipelines.runner import failure_messages, instance, launch


@pytest.mark.slow  # two whole runs at once: the slow stage, with the other concurrency tests
def test_parallel_multiprocess_runs_do_not_hit_the_duckdb_lock(govperf_home):
    dagster = instance()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(launch, "2025-07", "2025-08", multiprocess=True, dagster_instance=dagster),
            pool.submit(launch, "2025-09", multiprocess=True, dagster_instance=dagster),
        ]
        results = [f.result() for f in futures]
    for result in results:
        messages = failure_messages(result)
        assert result.success, messages
        assert not any("Could not set lock" in m for m in messages)


def _prepare_lake(lake: str) -> str | None:
    from pipelines.ingest.assets import ensure_lake_schemas

    try:
        ensure_lake_schemas(Path(lake))
    except Exception as error:  # returned, so the test can say what the other process saw
        return f"{type(error).__name__}: {error}"
    return None


def test_runs_starting_together_never_read_a_half_written_schema_file(tmp_path):
    """Every run writes the lake's zero-row schema files first. Four processes at once
    over a fresh lake, many times: none may read a file another is still writing
    (this raced in CI: 'Parquet file size is 0 bytes' in reference_data)."""
    errors = []
    pool = get_context("spawn").Pool(4)
    try:
        for attempt in range(12):
            lake = tmp_path / f"lake{attempt}"
            errors += [e for e in pool.map(_prepare_lake, [str(lake)] * 4) if e]
    finally:
        # close and join, not the context manager's terminate(): terminate stops the
        # workers with SIGTERM, which a worker started by a process that ignores it
        # (xdist's workers do, here) ignores too, and a worker left waiting for the
        # task queue's lock then hangs the join for ever (seen in CI)
        pool.close()
        pool.join()
    assert not errors, errors[:3]
    assert not list(tmp_path.rglob("*.partial"))
