"""The dbt project, and the environment and folders dbt runs in.

dbt writes nothing inside the checkout. Two kinds of output, two places:

    $GOVPERF_CACHE/dbt/<project hash>/   manifest.json, partial_parse*.msgpack
        The parse of the project, shared by every home. The hash covers every
        project file and the dbt version, so a changed project is parsed again
        into a folder of its own and never meets a stale manifest. Written in a
        scratch folder and renamed into place, so a reader sees all of it or none.
        Beside it, the parse each home's builds saved, by the home's profile
        paths: dbt re-parses the whole project when the profile differs from its
        saved parse's ("config profile ... changed"), so a build starts from a
        parse of its own home. The months a build scores reach dbt in the
        environment, read only at execution (macros/periods.sql), never as
        --vars: a new window would make dbt parse the whole project again.
    $GOVPERF_HOME/dbt/target/<invocation>/ and $GOVPERF_HOME/dbt/logs/
        What one home's dbt runs write (compiled SQL, run results, logs): two
        homes, even running at once, never share a folder.

Dagster reads the manifest when the definitions are imported, so the parse
happens then at the latest (once per project version and cache), before any run
starts; `govperf run` starts it earlier, in the background (pipelines/transform/parse.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from pipelines.parquet import temporary_beside
from pipelines.settings import DBT_PROJECT_DIR, settings
from pipelines.transform.parse import PARTIAL_PARSE, dbt_environment, dbt_executable, parse_dir

INVOCATIONS_KEPT = 10  # a home keeps its latest dbt invocations' folders for debugging
PARSES_KEPT = 24  # cached parses per project version, one per home (about 1 MB each)


def home_target_dir() -> Path:
    return settings().home / "dbt" / "target"


def home_log_dir() -> Path:
    return settings().home / "dbt" / "logs"


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=parse_dir())


def dbt_cli() -> DbtCliResource:
    """The resource that runs this project's dbt, without two start-ups a build does not need."""
    return GovperfDbtCli(project_dir=dbt_project, dbt_executable=dbt_executable())


class GovperfDbtCli(DbtCliResource):
    """dagster-dbt's DbtCliResource, less two costs it pays before every dbt command
    (dagster-dbt 0.29; measured on the sample, 2-core machine, about 3 s a build):

    - it runs `dbt --version` in a subprocess (a whole dbt start-up) to learn the version:
      the dbt-core installed beside us is the one that runs (dbt_executable);
    - it loads the profile and project in-process to make a dbt adapter, which it uses only
      to fetch column metadata and row counts after the build, which govperf never asks for.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def _parse_of_this_home() -> Path:
    """The cached parse of a build in this home: dbt parses the whole project again
    whenever the profile (which names the home's warehouse and lake) differs from the
    one its saved parse was made with."""
    key = hashlib.sha256(json.dumps(dbt_environment(), sort_keys=True).encode()).hexdigest()[:16]
    return dbt_project.manifest_path.parent / f"partial_parse.{key}.msgpack"


def invocation_dir(name: str) -> Path:
    """A new folder for one dbt invocation in this home, seeded with the cached
    parse of the same project and home (or the plain parse), so that dbt parses
    only what differs; dbt checks every file's hash and env var itself."""
    target = home_target_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    for seed in (_parse_of_this_home(), dbt_project.manifest_path.parent / PARTIAL_PARSE):
        if seed.exists():
            shutil.copyfile(seed, target / PARTIAL_PARSE)
            break
    return target


@contextlib.contextmanager
def build_window(first_month: dt.date, last_month: dt.date, lookback_months: int) -> Iterator[None]:
    """The months a build scores, in the environment of the dbt it starts inside the
    block (macros/periods.sql reads them); the process's own environment is restored."""
    window = {
        "GOVPERF_PERIOD_START": first_month.isoformat(),
        "GOVPERF_PERIOD_END": last_month.isoformat(),
        "GOVPERF_LOOKBACK_MONTHS": str(lookback_months),
    }
    before = {name: os.environ.get(name) for name in window}
    os.environ.update(window)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def keep_parse(target: Path, kept: int = PARSES_KEPT) -> None:
    """Cache the parse an invocation saved, for the next build in this home (the
    cache may be shared); written beside and renamed, so a reader never sees half of it."""
    saved = target / PARTIAL_PARSE
    if not saved.exists():
        return
    cached = _parse_of_this_home()
    partial = temporary_beside(cached)  # per host, process and thread: runs may share the cache
    shutil.copyfile(saved, partial)
    os.replace(partial, cached)
    older = sorted(cached.parent.glob("partial_parse.*.msgpack"), key=_mtime, reverse=True)
    for path in older[kept:]:
        path.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    """A file another run may remove while we look counts as oldest, never as an error."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def prune_invocations(keep: int = INVOCATIONS_KEPT, min_age_s: float = 3600) -> None:
    """Remove this home's older invocation folders, beyond the newest `keep`; a
    folder younger than min_age_s may belong to a run still going and stays."""
    root = home_target_dir()
    if not root.is_dir():
        return
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=_mtime, reverse=True)
    for folder in folders[keep:]:
        if time.time() - _mtime(folder) > min_age_s:
            shutil.rmtree(folder, ignore_errors=True)
