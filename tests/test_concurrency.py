"""DuckDB allows one writer per file. Two runs, each with the multiprocess
executor, over different months at the same time must both finish: ingest
writes only Parquet and every opening of the warehouse waits for its lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pipelines.runner import failure_messages, instance, launch


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
