"""dbt's own unit tests of the scoring rules pass, and none of them is skipped.

The unit tests (dbt_project/models/intermediate/_unit_tests__*.yml) check each rule
(normalisation, outlier treatment, imputation, aggregation, appraisal) on small
hand-computed fixtures. dbt needs the parents of a model under test to exist in
the warehouse (it reads their column types), so this test makes a warehouse from
scratch in a tmp dir: the reference tables and zero-row source files in a fresh
lake, then one `dbt build --empty` of the tested models and their parents, which
runs each model's unit tests before building it (data tests are left out).

Production `dbt build` runs exclude the unit tests (pipelines/transform/assets.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.ingest.assets import REFERENCE_TABLES, ensure_lake_schemas
from pipelines.parquet import write_table
from pipelines.reference import reference_tables
from pipelines.settings import DBT_PROJECT_DIR
from pipelines.settings import settings as govperf_settings
from pipelines.transform.project import dbt_environment, dbt_executable

UNIT_TEST_FILES = sorted((DBT_PROJECT_DIR / "models").rglob("_unit_tests__*.yml"))
# How many unit tests were written; a file that goes missing fails the test too.
MIN_UNIT_TESTS = 30


def _defined_unit_tests() -> dict[str, str]:
    """Every unit test the YAML files define: name → model."""
    defined: dict[str, str] = {}
    for path in UNIT_TEST_FILES:
        for test in yaml.safe_load(path.read_text(encoding="utf-8")).get("unit_tests") or []:
            assert test["name"] not in defined, f"unit test {test['name']} is defined twice"
            defined[test["name"]] = test["model"]
    return defined


def _dbt(args: list[str], target: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            dbt_executable(),
            *args,
            "--profiles-dir",
            ".",
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_dbt_unit_tests_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defined = _defined_unit_tests()
    assert len(defined) >= MIN_UNIT_TESTS, (
        f"only {len(defined)} unit tests defined in {[p.name for p in UNIT_TEST_FILES]}, "
        f"expected at least {MIN_UNIT_TESTS}"
    )

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
        monkeypatch.delenv(derived, raising=False)
    s = govperf_settings()
    environment = dbt_environment()
    s.lake.mkdir(parents=True)
    s.duckdb_path.parent.mkdir(parents=True)
    ensure_lake_schemas(s.lake)
    tables = reference_tables(s.reference_dir)
    for name in REFERENCE_TABLES:
        write_table(tables[name], s.lake / "reference" / f"{name}.parquet")

    # One `dbt build`: every parent of a tested model is built empty (dbt reads their
    # column types for the fixtures), and each model's unit tests run before it.
    target = tmp_path / "dbt_target"
    parents = " ".join(f"+{model}" for model in sorted(set(defined.values())))
    built = _dbt(
        ["build", "--empty", "--select", parents, "--exclude", "test_type:data", "--threads", "4"], target, environment
    )
    run_results = target / "run_results.json"
    assert run_results.exists(), built.stdout[-5000:] + built.stderr[-2000:]
    results = json.loads(run_results.read_text())["results"]
    broken = [
        f"{r['unique_id']}: {r['status']} {r.get('message') or ''}"
        for r in results
        if r["status"] not in ("success", "pass")
    ]
    assert not broken, "\n".join(broken) + "\n" + built.stdout[-8000:]
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-2000:]

    ran = {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(ran) >= len(defined), f"{len(ran)} unit tests ran, {len(defined)} are defined"
    assert not set(defined) - ran, f"defined but not run: {sorted(set(defined) - ran)}"
