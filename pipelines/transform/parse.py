"""Parsing the dbt project into the shared cache, with no Dagster import.

The parse is a dbt subprocess of several seconds. Dagster needs its manifest when
the definitions are imported, so `govperf run` starts it in the background first
(parse_in_background), and the parse overlaps the sample's generation, the plan
and Dagster's own import; the definitions then find the manifest made, or wait for
it under the parse lock. pipelines/transform/project.py says where the cache is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from pipelines.settings import DBT_PROJECT_DIR, engine, settings
from pipelines.transform.stamps import project_hash

PARTIAL_PARSE = "partial_parse.msgpack"


def parse_dir() -> Path:
    """Where this version of the project is parsed, shared by every home using the cache."""
    return settings().cache_dir / "dbt" / project_hash()


def dbt_executable() -> str:
    """The dbt installed beside this Python, so a venv works without being activated:
    govperf-dbt (dbt's command line, pipelines/transform/dbt_entry.py), or plain dbt."""
    for name in ("govperf-dbt", "dbt"):
        beside = Path(sys.executable).with_name(name)
        if beside.exists():
            return str(beside)
    return shutil.which("govperf-dbt") or shutil.which("dbt") or "dbt"


def dbt_environment() -> dict[str, str]:
    """What dbt reads from the environment: the engine (profiles.yml's target), profiles.yml's paths
    and DuckDB limits, the source locations,
    and the Monte Carlo's batch size (read at execution, macros/periods.sql build_setting)."""
    from pipelines.warehouse import warehouse_limits

    s = settings()
    limits = warehouse_limits()
    return {
        "GOVPERF_ENGINE": engine(),  # profiles.yml's target (validated here)
        "GOVPERF_SPARK_HOME": str(s.spark_home),
        "GOVPERF_DUCKDB": str(s.duckdb_path),
        "GOVPERF_LAKE": str(s.lake),
        "GOVPERF_DUCKDB_MEMORY_LIMIT": limits["memory_limit"],
        "GOVPERF_DUCKDB_THREADS": limits["threads"],
        "GOVPERF_MONTE_CARLO_BATCH_ROWS": limits["monte_carlo_batch_rows"],
    }


class ParseFailed(RuntimeError):
    """dbt could not parse the project (its own words follow)."""


def ensure_manifest() -> None:
    """Parse the project into its cache folder unless that folder exists."""
    os.environ.update({k: v for k, v in dbt_environment().items() if k not in os.environ or k == "GOVPERF_ENGINE"})
    parsed = parse_dir()
    if (parsed / "manifest.json").exists():
        return
    from pipelines.warehouse import file_lock

    # Several processes (and homes) may import the definitions at once; one parses.
    parsed.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(parsed.with_name(parsed.name + ".lock"), exclusive=True):
        if (parsed / "manifest.json").exists():
            return
        # Only the lock's holder parses: any scratch folder here is a killed parse's.
        for abandoned in parsed.parent.glob(f".{parsed.name}.*.partial"):
            shutil.rmtree(abandoned, ignore_errors=True)
        scratch = parsed.with_name(f".{parsed.name}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            done = subprocess.run(
                [dbt_executable(), "parse", "--quiet", "--target-path", str(scratch), "--log-path", str(scratch)],
                cwd=DBT_PROJECT_DIR,
                env=os.environ | {"DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 or not (scratch / "manifest.json").exists():
                said = (done.stdout + done.stderr).strip()[-3000:]
                raise ParseFailed(f"dbt could not parse {DBT_PROJECT_DIR} (exit {done.returncode}): {said}")
            for log in scratch.glob("dbt.log*"):  # the parse's log is no part of the cache
                log.unlink()
            shutil.rmtree(parsed, ignore_errors=True)  # a folder left without its manifest
            scratch.rename(parsed)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # a failed parse leaves nothing behind


def parse_in_background() -> threading.Thread | None:
    """Start ensure_manifest in a thread when the project is not parsed yet (the thread
    mostly waits for dbt's process, on another core). A failure there is raised again,
    with dbt's words, by the ensure_manifest the definitions call."""
    if (parse_dir() / "manifest.json").exists():
        return None
    # What the thread imports is imported here first: an import in a thread, beside the
    # caller's own imports (Dagster's, DuckDB's), is a needless chance of a lock-order hang.
    import pipelines.warehouse  # noqa: F401

    thread = threading.Thread(target=_parse_quietly, name="dbt parse", daemon=True)
    thread.start()
    return thread


def _parse_quietly() -> None:
    with contextlib.suppress(Exception):  # raised again where it is waited for
        ensure_manifest()
