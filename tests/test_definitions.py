"""The Dagster code location loads, and its graph is whole: every ingest asset
reaches the bulletin, and dbt's sources are the ingest assets themselves."""

import dagster as dg

from pipelines.definitions import defs
from pipelines.ingest.mapping import load_mappings
from pipelines.settings import settings

BULLETIN = dg.AssetKey(["publish", "bulletins"])


def test_definitions_load_with_jobs_schedules_and_sensor():
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "ingest_job",
        "monthly_scoring_and_bulletin_job",
        "full_pipeline_job",
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


def test_the_forecasts_sit_between_the_marts_and_their_mart_without_splitting_dbt():
    graph = defs.resolve_asset_graph()
    forecasts = dg.AssetKey(["analytics", "target_forecasts"])
    assert dg.AssetKey(["marts", "fct_indicator_values"]) in graph.get(forecasts).parent_keys
    assert forecasts in graph.get(dg.AssetKey(["staging", "stg_lake__target_forecasts"])).parent_keys
    assert dg.AssetKey(["marts", "fct_target_forecasts"]) in graph.get(BULLETIN).parent_keys
    # Each dbt step runs once: a Python asset between two models of one dbt step would
    # make Dagster split that step (into four, each paying dbt's start-up).
    steps = [node.name for node in defs.resolve_job_def("full_pipeline_job").graph.node_defs]
    assert sorted(s for s in steps if s.startswith("govperf_dbt")) == [
        "govperf_dbt_forecast_models",
        "govperf_dbt_models",
    ]


def test_gate_checks_are_blocking():
    graph = defs.resolve_asset_graph()
    check_keys = graph.asset_check_keys
    blocking = {k for k in check_keys if graph.get_check_spec(k).blocking}
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "fct_rankings"]), "publishable") in blocking
    assert dg.AssetCheckKey(dg.AssetKey(["ingest", "service_transactions"]), "quality_suite") in blocking
    assert dg.AssetCheckKey(dg.AssetKey(["ingest", "service_transactions"]), "rows_balanced") in blocking


def test_a_duplicate_delivery_warns_and_never_blocks():
    graph = defs.resolve_asset_graph()
    key = dg.AssetCheckKey(dg.AssetKey(["ingest", "service_transactions"]), "duplicate_delivery")
    assert key in graph.asset_check_keys and not graph.get_check_spec(key).blocking


def test_dbt_leaves_out_the_same_process_outcomes_the_gate_names():
    """fct_data_quality holds data checks only: the dbt var lists exactly the
    gate's process sources (a run's own scoring and publication outcomes)."""
    import yaml

    from pipelines.checks import gate
    from pipelines.settings import PROJECT_ROOT

    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["process_check_sources"]) == gate.PROCESS_SOURCES


def test_schedules_and_sensor_ask_for_the_right_months(tmp_path, monkeypatch):
    import datetime as dt

    repo = defs.get_repository_def()

    # On 2025-05-02 the daily ingest covers April, May, and the quarter starts April and January.
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 5, 2, 6, 0), repository_def=repo)
    requests = list(defs.resolve_schedule_def("daily_ingest_schedule").evaluate_tick(context).run_requests)
    assert sorted(r.partition_key for r in requests) == ["2025-01-01", "2025-04-01", "2025-05-01"]
    # The scoring schedule on the 8th scores the month before.
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 5, 8, 7, 0), repository_def=repo)
    requests = list(defs.resolve_schedule_def("monthly_scoring_schedule").evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2025-04-01"]
    # The annual appraisal (bulletin.yaml: 25 January, 09:00) scores December again, for its annual edition.
    annual = defs.resolve_schedule_def("annual_appraisal_schedule")
    assert annual.cron_schedule == "0 9 25 1 *"
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 25, 9, 0), repository_def=repo)
    requests = list(annual.evaluate_tick(context).run_requests)
    assert [(r.partition_key, r.run_key) for r in requests] == [("2025-12-01", "year:2025")]

    # The sensor asks for the month a new file's name carries, once.
    inbox = tmp_path / "inbox"
    (inbox / "projects").mkdir(parents=True)
    (inbox / "projects" / "重点项目_202503.csv").write_text("项目编号\n", encoding="utf-8")
    monkeypatch.setenv("GOVPERF_INBOX", str(inbox))
    sensor = defs.resolve_sensor_def("new_extract_sensor")
    first = sensor.evaluate_tick(dg.build_sensor_context(repository_def=repo))
    assert [r.partition_key for r in first.run_requests] == ["2025-03-01"]
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor, repository_def=repo))
    assert list(again.run_requests) == []


def test_every_asset_has_a_group_and_a_kind():
    """The asset list an auditor reads is tidy: no asset in Dagster's 'default'
    group, none without a kind (dbt sources no govperf asset defines included)."""
    graph = defs.resolve_asset_graph()
    untidy = [
        (key.to_user_string(), graph.get(key).group_name, graph.get(key).kinds)
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name in (None, "default") or not graph.get(key).kinds
    ]
    assert not untidy
    for key in (["ingest", "indicator_observations"], ["ingest_log", "check_results"]):
        assert graph.get(dg.AssetKey(key)).group_name == "ingest"
