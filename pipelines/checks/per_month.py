"""Asset check results per monthly partition, so the UI shows each month's own outcome.

A range of months is one run (every asset has a single-run backfill policy), and
an `AssetCheckResult` carries no partition: in a ranged run Dagster 1.13 records
it against no partition ("Partition —"), so one month's failure showed on every
month, while that month's bulletin said every check passed.

Dagster 1.13 has partitioned asset checks (a preview): a check spec with the
asset's partitions definition gets one planned row per month of the run in the
instance's check records, and an `AssetCheckEvaluation` names its partition.
Dagster itself fills that partition only for a single-partition run, so each
check here yields one evaluation per month, naming it: the same event Dagster
builds from an `AssetCheckResult`, with the month set. A failed blocking month
still stops the step (Dagster counts failed blocking evaluations), and the UI's
per-partition check view and `instance.event_log_storage` check records show
which month failed. This is preferred over per-month results in one run-wide
result's metadata: that would leave every month's check status the run's.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from typing import Any

import dagster as dg

from pipelines.partitions import monthly


def monthly_check_spec(name: str, *, asset: dg.AssetKey, blocking: bool, description: str) -> dg.AssetCheckSpec:
    """A check whose results are kept per month (the preview warning is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description, partitions_def=monthly)


def month_key(month: dt.date) -> str:
    return month.replace(day=1).strftime(monthly.fmt)


class MonthlyCheckResults:
    """The check results of one step, each on the month it is about."""

    def __init__(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> None:
        self._context = context.op_execution_context
        self._materializations: dict[tuple[dg.AssetKey, str], Any] = {}

    def _assets_def(self) -> dg.AssetsDefinition:
        return self._context.assets_def

    def output(self, asset_key: dg.AssetKey, check_name: str) -> dg.Output:
        """The check's step output: what downstream steps wait for (its value is nothing)."""
        name = self._assets_def().get_output_name_for_asset_check_key(dg.AssetCheckKey(asset_key, check_name))
        return dg.Output(None, output_name=name)

    def _target(self, asset_key: dg.AssetKey, partition: str):
        """The month's latest materialization, which the result is about (as Dagster
        records it for a single-partition run)."""
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )

        if (asset_key, partition) not in self._materializations:
            records = self._context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
            ).records
            self._materializations[(asset_key, partition)] = (
                AssetCheckEvaluationTargetMaterializationData(
                    storage_id=records[0].storage_id,
                    run_id=records[0].event_log_entry.run_id,
                    timestamp=records[0].timestamp,
                )
                if records
                else None
            )
        return self._materializations[(asset_key, partition)]

    def evaluation(
        self,
        asset_key: dg.AssetKey,
        check_name: str,
        month: dt.date,
        *,
        passed: bool,
        severity: dg.AssetCheckSeverity,
        metadata: Mapping[str, Any],
        description: str | None = None,
    ) -> dg.AssetCheckEvaluation:
        key = dg.AssetCheckKey(asset_key, check_name)
        partition = month_key(month)
        return dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=check_name,
            passed=passed,
            metadata={"month": f"{month:%Y-%m}", **metadata},
            target_materialization_data=self._target(asset_key, partition),
            severity=severity,
            description=description,
            blocking=self._assets_def().get_spec_for_check_key(key).blocking,
            partition=partition,
        )
