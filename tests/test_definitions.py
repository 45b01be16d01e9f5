"""The Dagster code location loads, and its graph is whole: every ingest asset
reaches the bulletin, and dbt's sources are the ingest assets themselves."""

import dagster as dg

from pipelines.definitions import defs
from pipelines.ingest.mapping import load_mappings
from pipelines.settings import settings

BULLETIN = dg.AssetKey(["publish", "monthly_bulletin"])


def test_definitions_load_with_jobs_schedules_and_sensor():
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "ingest_job", "monthly_scoring_and_bulletin_job", "full_pipeline_job",
    }
    assert defs.resolve_schedule_def("daily_ingest_schedule").cron_schedule == "0 6 * * *"
    assert defs.resolve_schedule_def("monthly_scoring_schedule").cron_schedule == "0 7 8 * *"
    assert defs.resolve_sensor_def("new_extract_sensor") is not None


def test_every_ingest_asset_reaches_the_bulletin():
    graph = defs.resolve_asset_graph()
    upstream_of_bulletin = graph.get(BULLETIN).parent_keys
    ancestors: set[dg.AssetKey] = set()
    frontier = set(upstream_of_bulletin)
    while frontier:
        key = frontier.pop()
        if key in ancestors:
            continue
        ancestors.add(key)
        frontier |= set(graph.get(key).parent_keys)
    for source in load_mappings(settings().mappings_dir):
        assert dg.AssetKey(["ingest", source]) in ancestors, source
    assert dg.AssetKey(["marts", "fct_rankings"]) in ancestors
    # dbt staging reads the ingest asset directly: no detached source asset in between.
    staging = graph.get(dg.AssetKey(["staging", "stg_lake__service_transactions"]))
    assert dg.AssetKey(["ingest", "service_transactions"]) in staging.parent_keys


def test_gate_checks_are_blocking():
    graph = defs.resolve_asset_graph()
    check_keys = graph.asset_check_keys
    blocking = {k for k in check_keys if graph.get_check_spec(k).blocking}
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "fct_rankings"]), "publishable") in blocking
    assert dg.AssetCheckKey(dg.AssetKey(["ingest", "service_transactions"]), "quality_suite") in blocking
    assert dg.AssetCheckKey(dg.AssetKey(["ingest", "service_transactions"]), "rows_balanced") in blocking
