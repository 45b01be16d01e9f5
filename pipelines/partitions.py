"""The month is the unit of ingest and scoring."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.reference import first_scorable_month
from pipelines.settings import settings

FIRST_MONTH = first_scorable_month(settings().reference_dir)

monthly = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH.isoformat(), end_offset=1)


def months_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[dt.date]:
    """The months a run covers: one partition, or a range in a single-run backfill."""
    if isinstance(context, dg.AssetExecutionContext):
        keys = context.partition_keys
    else:
        tags = context.run.tags
        start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
        end = tags.get("dagster/asset_partition_range_end") or start
        if start is None:
            return []
        keys = monthly.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return [dt.date.fromisoformat(k) for k in keys]
