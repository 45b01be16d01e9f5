"""The event log that keeps its connections open (pipelines/dagster_storage.py) is
Dagster's own format: what a run records through it, plain Dagster reads back,
and the reverse; and it really does keep one connection, committing without a
sync per event."""

from pathlib import Path

import dagster as dg
import pytest

from pipelines.dagster_storage import KeptOpenSqliteEventLogStorage
from pipelines.instance import open_instance
from pipelines.runner import write_dagster_yaml

months = dg.MonthlyPartitionsDefinition(start_date="2025-01-01", end_date="2025-07-01")


@dg.asset(partitions_def=months, backfill_policy=dg.BackfillPolicy.single_run())
def monthly_figure(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"months": len(context.partition_keys)})


job = dg.define_asset_job("figures", selection=[monthly_figure], partitions_def=months)
defs = dg.Definitions(assets=[monthly_figure], jobs=[job])


def _run_six_months(instance: dg.DagsterInstance) -> str:
    result = dg.execute_job(
        dg.reconstructable(_job),
        instance=instance,
        run_config={"execution": {"config": {"in_process": {}}}},
        tags={
            "dagster/asset_partition_range_start": "2025-01-01",
            "dagster/asset_partition_range_end": "2025-06-01",
        },
    )
    assert result.success
    return result.run_id


def _job() -> dg.JobDefinition:
    return defs.resolve_job_def("figures")


def _plain_instance(dagster_home: Path) -> dg.DagsterInstance:
    """The same home opened with Dagster's own SQLite storage, no govperf class."""
    return dg.DagsterInstance.from_config(str(dagster_home), config_filename="plain.yaml")


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    home.mkdir()
    (home / "plain.yaml").write_text(
        f"telemetry:\n  enabled: false\nstorage:\n  sqlite:\n    base_dir: {home}\n",
        encoding="utf-8",
    )
    return home


def test_govperf_homes_use_the_kept_open_event_log(dagster_home: Path) -> None:
    instance = open_instance(dagster_home, write_dagster_yaml)
    try:
        assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
        run_id = _run_six_months(instance)
        storage = instance.event_log_storage
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        first = storage._engines["index"].pool.checkedin()
        with storage.index_connection():
            pass
        assert storage._engines["index"].pool.checkedin() == first == 1  # the same connection, back
    finally:
        instance.dispose()
    plain = _plain_instance(dagster_home)
    try:
        materialized = plain.get_materialized_partitions(dg.AssetKey("monthly_figure"))
        assert sorted(materialized) == [f"2025-0{m}-01" for m in range(1, 7)]
        events = plain.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert len(events) == 6
    finally:
        plain.dispose()


def test_a_home_written_by_plain_dagster_reads_and_grows(dagster_home: Path) -> None:
    plain = _plain_instance(dagster_home)
    try:
        before = _run_six_months(plain)
    finally:
        plain.dispose()
    instance = open_instance(dagster_home, write_dagster_yaml)
    try:
        assert len(instance.all_logs(before, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)) == 6
        after = _run_six_months(instance)
        records = instance.fetch_materializations(dg.AssetKey("monthly_figure"), limit=100).records
        assert {r.run_id for r in records} == {before, after} and len(records) == 12
    finally:
        instance.dispose()
