"""Incremental runs give what a full run gives, byte for byte, and do only their share.

One home lives through what analysts do: a run over July and August, an unchanged
rerun (no Dagster run at all, each step saying why), September's files arriving
(only September is landed, scored and drawn), then July's hotline export delivered
again with a complaint withdrawn (July and every later month are redone: look-back,
year-to-date, rank change, streaks and the later editions' trend charts read it).
A copy of that home then recomputes every month with --force (the same history of
deliveries, so the same delivery times). Every marts table and every file of every
edition must be equal in both. Whole pipelines: slow stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.conftest import SHARED_CACHE, edition_hashes
from tests.test_rerun_and_duplicates import all_marts

pytestmark = pytest.mark.slow

GOVPERF = str(Path(sys.executable).with_name("govperf"))


def _env(home: Path, inbox: Path) -> dict[str, str]:
    env = dict(os.environ) | {
        "GOVPERF_HOME": str(home),
        "GOVPERF_INBOX": str(inbox),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(home / "dagster_home"),
    }
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
        env.pop(derived, None)
    return env


def _run(home: Path, inbox: Path, *args: str) -> str:
    done = subprocess.run([GOVPERF, "run", *args], env=_env(home, inbox), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _dagster_runs(home: Path) -> int:
    return len([p for p in (home / "dagster_home" / "history" / "runs").glob("*.db") if p.stem != "index"])


@pytest.fixture(scope="module")
def lived(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("incremental")
    inbox, held_back = base / "inbox", base / "held_back"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=5,
        first_month="2025-07",
        last_month="2025-09",
        transactions=1800,
    )
    for path in sorted(inbox.rglob("*202509*")):
        target = held_back / path.relative_to(inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)  # keeps its delivery time
    home = base / "home"
    said = {"first": _run(home, inbox)}
    runs_before = _dagster_runs(home)
    said["unchanged"] = _run(home, inbox)
    said["unchanged_runs"] = _dagster_runs(home) - runs_before
    for path in sorted(held_back.rglob("*.*")):
        shutil.move(path, inbox / path.relative_to(held_back))
    said["dry_run"] = _run(home, inbox, "--dry-run")
    said["new_month"] = _run(home, inbox)
    corrected = sorted((inbox / "hotline_complaints").glob("*202507*"))[0]
    corrected.write_bytes(corrected.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n")
    said["corrected"] = _run(home, inbox)
    # The same home, the same history of deliveries, everything recomputed.
    full = base / "full"
    shutil.copytree(home, full, symlinks=True)
    said["full"] = _run(full, inbox, "--force")
    assert "running the full job for 2025-07..2025-09" in said["full"]
    return {"home": home, "full": full, "said": said}


def test_an_unchanged_rerun_starts_no_run_and_says_why(lived: dict) -> None:
    said = lived["said"]["unchanged"]
    assert lived["said"]["unchanged_runs"] == 0
    assert "nothing to do for 2025-07..2025-08: every step is up to date" in said
    for step in ("ingest/service_transactions", "ingest/leader_reviews", "dbt", "bulletins"):
        assert f"{step}: nothing to do for " in said


def test_a_new_month_lands_scores_and_draws_only_itself(lived: dict) -> None:
    assert "would run the full job for 2025-09..2025-09" in lived["said"]["dry_run"]
    said = lived["said"]["new_month"]
    assert "running the full job for 2025-09..2025-09" in said
    assert "ingest/service_transactions: redo 2025-09: 2025-09 because not done yet" in said
    assert "202507" not in said.split("running the full job", 1)[1]  # no July file landed again


def test_a_corrected_middle_month_redoes_the_closure(lived: dict) -> None:
    said = lived["said"]["corrected"]
    assert "running the full job for 2025-07..2025-09" in said
    assert "ingest/hotline_complaints: redo 2025-07..2025-09" in said
    assert "ingest/service_transactions: nothing to do" in said


def test_incremental_marts_equal_a_full_run(lived: dict) -> None:
    incremental = all_marts(lived["home"] / "warehouse" / "govperf.duckdb")
    full = all_marts(lived["full"] / "warehouse" / "govperf.duckdb")
    assert incremental.keys() == full.keys()
    differing = [table for table in full if incremental[table] != full[table]]
    assert not differing, f"marts differ from a full run's: {differing}"


def test_incremental_editions_equal_a_full_run(lived: dict) -> None:
    incremental = edition_hashes(lived["home"] / "bulletins")
    full = edition_hashes(lived["full"] / "bulletins")
    assert incremental.keys() == full.keys()
    assert [name for name in full if incremental[name] != full[name]] == []
