"""Check results belong to the month they are about: a run over two months where
one month's file fails a check records the failure on that month's partition
only, in the run's events and in the instance's check records (what the UI shows
per partition), and the other month's result as passed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter

from pipelines.runner import instance, launch
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.conftest import use_home

TRANSACTIONS = dg.AssetKey(["ingest", "service_transactions"])
QUARANTINE = dg.AssetCheckKey(TRANSACTIONS, "quarantine_within_limit")


@pytest.fixture
def bad_august(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """July and August 2025 of a tiny city; in August a fifth of the ratings are an
    unknown level, so that file's quarantined share is over the mapping's limit."""
    inbox = tmp_path / "inbox"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month="2025-07",
        last_month="2025-08",
        transactions=2000,
    )
    august = inbox / "service_transactions" / "好差评明细_202508.csv"
    lines = august.read_bytes().decode("gbk").splitlines(keepends=True)
    for i in range(1, len(lines), 5):
        lines[i] = lines[i].replace(",满意,", ",很不好,", 1).replace(",非常满意,", ",很不好,", 1)
    august.write_bytes("".join(lines).encode("gbk"))
    use_home(monkeypatch, tmp_path / "home", inbox)
    return tmp_path / "home"


@pytest.mark.slow
def test_a_failed_check_is_recorded_on_its_own_month_only(bad_august: Path):
    with instance() as dagster_instance:
        result = launch("2025-07", "2025-08", job="ingest", dagster_instance=dagster_instance)
        assert not result.success  # the blocking check stopped the run

        evaluations = [
            event.event_specific_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
            and event.event_specific_data.asset_check_key == QUARANTINE
        ]
        assert {e.partition: e.passed for e in evaluations} == {"2025-07-01": True, "2025-08-01": False}
        failed = next(e for e in evaluations if not e.passed)
        assert "2025-08" in failed.description and failed.metadata["month"].value == "2025-08"
        assert "好差评明细_202508.csv" in failed.metadata["details"].value
        # No result of any check covers the whole run ("Partition —").
        every = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert every and all(e.event_specific_data.partition for e in every)

        # The instance's check records, per partition, as the UI reads them.
        storage = dagster_instance.event_log_storage
        for partition, status in (("2025-07-01", "SUCCEEDED"), ("2025-08-01", "FAILED")):
            records = storage.get_asset_check_execution_history(
                QUARANTINE, limit=10, partition_filter=PartitionKeyFilter(key=partition)
            )
            assert [(r.run_id, r.status.value) for r in records] == [(result.run_id, status)], partition
            assert records[0].event.dagster_event.asset_check_evaluation_data.partition == partition
        # Each month's result points at that month's materialization of the asset.
        july = storage.get_asset_check_execution_history(
            QUARANTINE, limit=1, partition_filter=PartitionKeyFilter(key="2025-07-01")
        )[0]
        target = july.event.dagster_event.asset_check_evaluation_data.target_materialization_data
        materialization = dagster_instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=TRANSACTIONS, asset_partitions=["2025-07-01"]), limit=1
        ).records[0]
        assert target is not None and target.storage_id == materialization.storage_id
