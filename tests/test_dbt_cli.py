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
