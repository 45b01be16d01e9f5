"""Runs launched from the UI, its schedules and the sensor queue under limits
that suit the machine and the single DuckDB writer: the figure from
reference/run_queue.yaml, validated when loaded, in effect on the instance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines import runner
from pipelines.cli import main
from pipelines.definitions import defs
from pipelines.reference import ConfigError
from pipelines.run_queue import load_config
from pipelines.settings import PROJECT_ROOT
from tests.conftest import use_home

# The dagster.yaml that govperf wrote into every home before the run queue had limits.
OLD_DAGSTER_YAML = """\
# Written by govperf on first use. Run history, event logs and schedules live
# in this folder, so they survive restarts of the UI and of the machine.
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
"""


@pytest.fixture
def govperf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home: the queue needs no extracts."""
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    return tmp_path / "home"


def _queue(home: Path) -> tuple[int, list[dict]]:
    with runner.instance() as instance:
        assert instance.root_directory == str(home / "dagster_home")
        config = instance.run_coordinator.get_run_queue_config()
        return config.max_concurrent_runs, list(config.tag_concurrency_limits)


def _config_with(tmp_path: Path, run_queue_yaml: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "sources" / "mappings", config / "mappings")
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", config / "reference")
    (config / "reference" / "run_queue.yaml").write_text(run_queue_yaml, encoding="utf-8")
    return config


def _limit(limits: list[dict], key: str) -> dict:
    return next(limit for limit in limits if limit["key"] == key)


def test_run_queue_limits_are_in_effect_on_the_instance(govperf_home: Path):
    runs, limits = _queue(govperf_home)
    assert runs == load_config().runs_at_once() >= 1
    assert _limit(limits, "govperf/warehouse") == {"key": "govperf/warehouse", "value": "write", "limit": 1}
    assert _limit(limits, "dagster/partition")["value"] == {"applyLimitPerUniqueValue": True}
    # The jobs that write the warehouse carry the tag the limit counts; ingest does not.
    assert defs.resolve_job_def("monthly_scoring_and_bulletin_job").tags["govperf/warehouse"] == "write"
    assert defs.resolve_job_def("full_pipeline_job").tags["govperf/warehouse"] == "write"
    assert "govperf/warehouse" not in defs.resolve_job_def("ingest_job").tags


def test_the_figure_comes_from_run_queue_yaml(govperf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOVPERF_CONFIG", str(_config_with(tmp_path, "max_concurrent_runs: 3\n")))
    assert _queue(govperf_home)[0] == 3


def test_a_home_from_an_older_govperf_gets_the_new_settings(govperf_home: Path):
    dagster_home = govperf_home / "dagster_home"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(OLD_DAGSTER_YAML, encoding="utf-8")
    runs, limits = _queue(govperf_home)
    assert runs == load_config().runs_at_once()  # not Dagster's default of 10
    assert _limit(limits, "govperf/warehouse")["limit"] == 1
    assert not list(dagster_home.glob("*.partial"))


def test_an_operators_own_dagster_yaml_is_kept(govperf_home: Path):
    dagster_home = govperf_home / "dagster_home"
    dagster_home.mkdir(parents=True)
    own = "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 5\n"
    (dagster_home / "dagster.yaml").write_text(own, encoding="utf-8")
    assert _queue(govperf_home)[0] == 5
    assert (dagster_home / "dagster.yaml").read_text(encoding="utf-8") == own


@pytest.mark.parametrize("value", ["0", "many", "2.5", "true", "~"])
def test_a_bad_figure_is_refused_naming_the_file(
    govperf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
):
    config = _config_with(tmp_path, f"max_concurrent_runs: {value}\n")
    monkeypatch.setenv("GOVPERF_CONFIG", str(config))
    with pytest.raises(
        ConfigError, match=r"run_queue\.yaml: max_concurrent_runs: .*whole number from 1 to 64, or auto"
    ):
        load_config()

    # `govperf ui` writes the figure into dagster.yaml: it refuses in one sentence, before starting Dagster.
    def must_not_start(*args, **kwargs):  # a guard: should the refusal regress, no UI starts inside pytest
        raise AssertionError("govperf ui started Dagster despite a bad run_queue.yaml")

    monkeypatch.setattr("pipelines.process_tree.run_whole", must_not_start)
    monkeypatch.setattr("os.execv", must_not_start)
    result = CliRunner().invoke(main, ["ui", "--port", "1"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config / 'reference' / 'run_queue.yaml'}: max_concurrent_runs")
    assert "Traceback" not in result.output
    # check-config reads it too, so a bad file is found before any run or UI needs it.
    checked = CliRunner().invoke(main, ["check-config"])
    assert checked.exit_code == 1, checked.output
    assert f"{config / 'reference' / 'run_queue.yaml'}: max_concurrent_runs" in checked.output
