"""DuckDB's limits come from reference/warehouse.yaml, validated at load, and reach
every connection govperf opens and the dbt profile."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines.reference import ConfigError
from pipelines.settings import PROJECT_ROOT
from pipelines.transform.project import dbt_environment
from pipelines.warehouse import duckdb_connection, duckdb_limits


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder of its own (a copy of the project's), with GOVPERF_CONFIG on it."""
    copied = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", copied / "reference")
    monkeypatch.setenv("GOVPERF_CONFIG", str(copied))
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    return copied / "reference" / "warehouse.yaml"


def test_connections_and_dbt_get_the_configured_limits(config: Path) -> None:
    config.write_text("memory_limit: 300MB\nthreads: 1\n", encoding="utf-8")
    assert duckdb_limits() == {"memory_limit": "300MB", "threads": "1"}
    con = duckdb_connection()
    try:
        limit, threads = con.execute("select current_setting('memory_limit'), current_setting('threads')").fetchone()
    finally:
        con.close()
    assert (limit, threads) == ("286.1 MiB", 1)  # DuckDB reports 300 MB in MiB
    environment = dbt_environment()
    assert environment["GOVPERF_DUCKDB_MEMORY_LIMIT"] == "300MB"
    assert environment["GOVPERF_DUCKDB_THREADS"] == "1"
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    assert "env_var('GOVPERF_DUCKDB_MEMORY_LIMIT'" in profile and "env_var('GOVPERF_DUCKDB_THREADS'" in profile


def test_auto_threads_are_the_usable_cores(config: Path) -> None:
    config.write_text("memory_limit: 1GB\nthreads: auto\n", encoding="utf-8")
    assert duckdb_limits()["threads"] == str(len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("memory_limit: lots\n", "memory_limit"),
        ("memory_limit: 1GB\nthreads: 0\n", "threads"),
        ("memory_limit: 1GB\nthread: 2\n", "thread"),
        ("threads: 2\n", "memory_limit"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_file_and_the_key(config: Path, text: str, named: str) -> None:
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=named) as refused:
        duckdb_limits()
    assert str(config) in str(refused.value)
