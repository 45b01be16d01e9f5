"""dbt writes nothing inside the checkout: each home has its own dbt target and
log folders, and the parse homes may share sits in GOVPERF_CACHE under a hash
of the project, so a changed project never meets a stale manifest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from tests.test_cli_errors import home_env, tiny_city

GOVPERF = str(Path(sys.executable).with_name("govperf"))


def test_the_parse_cache_key_changes_with_every_file_dbt_reads(tmp_path: Path):
    from pipelines.transform.stamps import project_hash

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "*.lock"))
    original = project_hash(project)
    assert project_hash(project) == original  # stable
    model = next((project / "models" / "marts").glob("*.sql"))
    macro = next((project / "macros").glob("*.sql"))
    for changed in (model, macro, project / "dbt_project.yml", project / "profiles.yml"):
        before = changed.read_bytes()
        changed.write_bytes(before + b"\n-- changed\n" if changed.suffix == ".sql" else before + b"\n# changed\n")
        assert project_hash(project) != original, changed
        changed.write_bytes(before)
    (project / "tests" / "new_test.sql").write_text("select 1 where false\n")
    assert project_hash(project) != original
    (project / "tests" / "new_test.sql").unlink()
    assert project_hash(project) == original


def _untracked_under_dbt_project() -> set[str]:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", "dbt_project"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(listed.splitlines())


@pytest.mark.slow
def test_two_homes_running_at_once_keep_their_own_dbt_folders_and_the_checkout_clean(tmp_path: Path):
    inbox = tmp_path / "inbox"
    tiny_city(inbox)
    cache = tmp_path / "shared_cache"
    before = _untracked_under_dbt_project()
    homes = [tmp_path / "home_a", tmp_path / "home_b"]
    # Output to files, not pipes: a run blocked on a full pipe while it holds the
    # shared parse lock would stall the other.
    logs = [tmp_path / f"{home.name}.log" for home in homes]
    runs = []
    for home, log in zip(homes, logs, strict=True):
        with log.open("w") as out:
            runs.append(
                subprocess.Popen(
                    [GOVPERF, "run", "--from", "2025-07", "--to", "2025-07"],
                    env=home_env(tmp_path, GOVPERF_HOME=home, GOVPERF_CACHE=cache),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    for run, log in zip(runs, logs, strict=True):
        assert run.wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]

    assert _untracked_under_dbt_project() == before  # nothing new inside the checkout
    targets = []
    for home in homes:
        invocations = sorted(p for p in (home / "dbt" / "target").iterdir() if p.is_dir())
        # one per dbt step of the run: the models, then the forecasts' mart after their asset
        assert [p.name.split("-")[0] for p in invocations] == ["govperf_dbt_forecast_models", "govperf_dbt_models"]
        assert all((p / "run_results.json").is_file() for p in invocations)
        assert (home / "dbt" / "logs" / "dbt.log").is_file()
        targets.append(invocations[1].resolve())
    assert targets[0] != targets[1] and not targets[0].is_relative_to(homes[1])
    # One parse, shared, complete, and nothing half-written beside it.
    from pipelines.transform.stamps import project_hash

    parsed = [p for p in (cache / "dbt").iterdir() if p.is_dir()]
    assert [p.name for p in parsed] == [project_hash()]
    assert (parsed[0] / "manifest.json").is_file() and (parsed[0] / "partial_parse.msgpack").is_file()
    # the parses saved by the two builds: one per home, as the profile names its warehouse
    assert len(list(parsed[0].glob("partial_parse.*.msgpack"))) == 2
    assert not list((cache / "dbt").glob(".*partial")) and not list(parsed[0].glob(".*partial"))

    # Scoring the same month again starts from that parse: dbt does not parse the whole project again.
    rescored = subprocess.run(
        [GOVPERF, "run", "--job", "scoring", "--from", "2025-07", "--to", "2025-07"],
        env=home_env(tmp_path, GOVPERF_HOME=homes[0], GOVPERF_CACHE=cache),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    assert _last_invocation_messages(homes[0] / "dbt" / "logs" / "dbt.log")
    assert not [
        m
        for m in _last_invocation_messages(homes[0] / "dbt" / "logs" / "dbt.log")
        if "Unable to do partial parsing" in m
    ]


def _last_invocation_messages(log: Path) -> list[str]:
    """The messages of the last dbt invocation in a dbt.log (JSON lines)."""
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    last = events[-1]["info"]["invocation_id"]
    return [e["info"]["msg"] for e in events if e["info"]["invocation_id"] == last]


def test_a_parse_started_in_the_background_is_the_one_the_definitions_wait_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from pipelines.transform.parse import ensure_manifest, parse_dir, parse_in_background
    from pipelines.transform.stamps import project_hash

    cache = tmp_path / "cache"
    monkeypatch.setenv("GOVPERF_CACHE", str(cache))
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    parsing = parse_in_background()
    assert parsing is not None and parsing.is_alive()
    ensure_manifest()  # waits on the parse lock for the background parse, then finds its manifest
    parsing.join(timeout=120)
    assert not parsing.is_alive()
    assert [p.name for p in (cache / "dbt").iterdir() if p.is_dir()] == [project_hash()]
    assert (parse_dir() / "manifest.json").is_file()
    assert not list((cache / "dbt").glob(".*partial"))
    assert parse_in_background() is None  # parsed already: nothing started
