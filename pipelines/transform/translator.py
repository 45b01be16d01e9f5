"""How dbt models appear in Dagster: grouped by their folder, keyed by schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings


class GovperfTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=False))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Sources tied to an ingest asset keep that asset's key (meta.dagster.asset_key).
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        schema = dbt_resource_props["config"].get("schema") or "main"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "model":
            return dbt_resource_props["fqn"][1] if len(dbt_resource_props["fqn"]) > 2 else "models"
        return super().get_group_name(dbt_resource_props)


def lake_source_specs(manifest: Mapping[str, Any], defined: set[dg.AssetKey]) -> list[dg.AssetSpec]:
    """The dbt sources that no govperf asset defines (the lake's ingest_log tables,
    a canonical table no mapping feeds yet), as external assets of the ingest
    group: without a spec Dagster draws them as bare stubs, with no group or kind.
    Every dbt source is Parquet in the lake, written by ingest."""
    translator = GovperfTranslator()
    specs = {}
    for source in manifest["sources"].values():
        key = translator.get_asset_key(source)
        if key in defined or key in specs:
            continue
        specs[key] = dg.AssetSpec(
            key,
            group_name="ingest",
            kinds={"parquet"},
            description=source.get("description") or source.get("source_description") or None,
        )
    return list(specs.values())
