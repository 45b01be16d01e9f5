"""The dbt project, and the environment dbt runs in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from pipelines.settings import DBT_PROJECT_DIR, settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python, so a venv works without being activated."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_environment() -> dict[str, str]:
    """Paths dbt reads from the environment (profiles.yml and the source locations)."""
    s = settings()
    return {"GOVPERF_DUCKDB": str(s.duckdb_path), "GOVPERF_LAKE": str(s.lake)}


def _manifest_is_current() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    project_files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        project_files += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return all(p.stat().st_mtime <= built for p in project_files)


def ensure_manifest() -> None:
    """Parse the project if the manifest is missing (a fresh clone, CI) or older
    than any model, macro or test."""
    os.environ.update({k: v for k, v in dbt_environment().items() if k not in os.environ})
    if _manifest_is_current():
        return
    from dagster_dbt import DbtCliResource

    from pipelines.warehouse import file_lock

    # Several processes may import the definitions at once; one parses.
    with file_lock(dbt_project.project_dir / "target.lock", exclusive=True):
        if not _manifest_is_current():
            dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
            dbt.cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
