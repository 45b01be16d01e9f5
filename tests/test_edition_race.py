"""Two `govperf run` of the same months at once on one home both succeed, and leave
every edition whole: all its department pages and its export, the same bytes as a
single run's in a fresh home (issue 11, item 2)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.edition_folder import drafts_in
from pipelines.publish.wording import page_name
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT

FIRST, LAST = "2025-07", "2025-08"
GOVPERF = str(Path(sys.executable).parent / "govperf")


def _env(home: Path, inbox: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG")}
    return env | {
        "GOVPERF_HOME": str(home),
        "GOVPERF_INBOX": str(inbox),
        "GOVPERF_CACHE": str(cache),
        "DAGSTER_HOME": str(home / "dagster_home"),
    }


def _start(home: Path, inbox: Path, cache: Path) -> tuple[subprocess.Popen, Path]:
    # Output to a file, not a pipe: a run blocked on a full pipe while it holds an
    # edition's lock would stall the other run until the timeout.
    home.mkdir(parents=True, exist_ok=True)
    log = home.with_name(f"{home.name}-{len(list(home.parent.glob(f'{home.name}-*.log')))}.log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [GOVPERF, "run", "--from", FIRST, "--to", LAST],
            env=_env(home, inbox, cache),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def _finish(started: tuple[subprocess.Popen, Path]) -> str:
    process, log = started
    process.wait(timeout=900)
    output = log.read_text(errors="replace")
    assert process.returncode == 0, f"govperf run failed:\n{output[-4000:]}"
    return output


def _editions(home: Path) -> dict[str, dict[str, str]]:
    """Each draft edition's files (through its link) by their SHA-256."""
    found = {}
    for draft in drafts_in(home / "bulletins"):
        version = draft.current()
        found[draft.edition.key] = {
            p.relative_to(version).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(version.rglob("*"))
            if p.is_file()
        }
    return found


@pytest.mark.slow
def test_two_runs_of_the_same_months_at_once_leave_whole_editions(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=5,
        first_month=FIRST,
        last_month=LAST,
        transactions=2000,
    )
    cache = tmp_path / "cache"

    alone = tmp_path / "alone"
    _finish(_start(alone, inbox, cache))
    reference = _editions(alone)
    assert sorted(reference) == [FIRST, LAST]

    shared = tmp_path / "shared"
    runs = [_start(shared, inbox, cache) for _ in range(2)]
    logs = [_finish(run) for run in runs]
    waits = [line for log in logs for line in log.splitlines() if "waiting for edition" in line]
    print(f"{len(waits)} lock waits logged", *waits[:4], sep="\n")

    editions = _editions(shared)
    con = duckdb.connect(str(shared / "warehouse" / "govperf.duckdb"), read_only=True)
    try:
        for key, files in editions.items():
            ranked = [
                row[0]
                for row in con.execute(
                    "select department_id from marts.fct_rankings "
                    "where period_type = 'month' and strftime(period, '%Y-%m') = ?",
                    [key],
                ).fetchall()
            ]
            pages = {name for name in files if name.startswith(f"bulletin_{key}_departments/")}
            assert pages == {f"bulletin_{key}_departments/{page_name(d)}.html" for d in ranked} and ranked, key
            assert {f"bulletin_{key}.html", f"绩效排名_{key}.xlsx"} <= set(files), key
    finally:
        con.close()
    differing = sorted(
        f"{key}/{name}"
        for key in reference
        for name in set(reference[key]) | set(editions.get(key, {}))
        if reference[key].get(name) != editions.get(key, {}).get(name)
    )
    assert sorted(editions) == sorted(reference) and not differing, f"not the bytes of a single run: {differing}"
    assert not list(shared.rglob("*.partial"))
    for draft in drafts_in(shared / "bulletins"):
        assert len(list(draft.versions.iterdir())) <= 2
