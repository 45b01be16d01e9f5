"""The dbt resource skips dagster-dbt's two start-up costs, and still runs dbt."""

from __future__ import annotations

import functools
import importlib.metadata

from dagster_dbt import DbtCliResource

from pipelines.transform.project import GovperfDbtCli, dbt_cli


def test_the_overridden_start_up_steps_still_exist_in_dagster_dbt() -> None:
    # If dagster-dbt renames them, the overrides would silently stop saving anything.
    assert isinstance(DbtCliResource.__dict__["_cli_version"], functools.cached_property)
    assert callable(DbtCliResource.__dict__["_initialize_dbt_core_adapter"])
    assert "_cli_version" in GovperfDbtCli.__dict__ and "_initialize_dbt_core_adapter" in GovperfDbtCli.__dict__


def test_the_version_is_the_installed_dbt_core_without_running_dbt(monkeypatch) -> None:
    import dagster_dbt.core.resource

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"dbt started: {args}")

    # dagster-dbt's own `dbt --version` call goes through this name
    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_subprocess)
    resource = dbt_cli()
    assert str(resource._cli_version) == importlib.metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_dbt_runs_as_govperf_dbt_with_dbt_s_own_arguments_output_and_exit_status(tmp_path) -> None:
    """The resource starts govperf-dbt (dbt's command line, the collector tuned for a
    one-shot process): what dbt says and its exit status must come through unchanged."""
    import subprocess
    from pathlib import Path

    executable = dbt_cli().dbt_executable
    assert Path(executable).name == "govperf-dbt"
    ours = subprocess.run([executable, "--version"], capture_output=True, text=True)
    plain = subprocess.run([str(Path(executable).with_name("dbt")), "--version"], capture_output=True, text=True)
    assert ours.returncode == 0 and importlib.metadata.version("dbt-core") in ours.stdout
    assert ours.stdout.splitlines()[:2] == plain.stdout.splitlines()[:2]
    refused = subprocess.run([executable, "no-such-command"], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode != 0 and "no-such-command" in refused.stdout + refused.stderr
