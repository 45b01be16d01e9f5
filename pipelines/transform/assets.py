"""The dbt models as Dagster assets, partitioned by month.

A run scores the months of its partition (or partition range) by passing them
to dbt in its environment. Before it starts, it asks the gate whether any of those months
failed a blocking check in an earlier ingest run, and refuses if so. dbt is
the only writer of the warehouse, and it writes under the warehouse lock.
"""

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from pipelines.checks import gate
from pipelines.checks.gate import CheckOutcome
from pipelines.ingest.mapping import load_mappings
from pipelines.ingest.stamps import months_through, step_name
from pipelines.ledger import events
from pipelines.ledger.mart_digest import differences, warehouse_digests
from pipelines.partitions import FIRST_MONTH, monthly, months_of
from pipelines.reference import load_catalogue, lookback_months
from pipelines.settings import engine, settings
from pipelines.stamps import StampStore
from pipelines.transform import stamps
from pipelines.transform.parse import ensure_manifest
from pipelines.transform.project import (
    build_window,
    dbt_environment,
    dbt_project,
    home_log_dir,
    invocation_dir,
    keep_parse,
    prune_invocations,
)
from pipelines.transform.spark_marts import marts_files_sha256, publish_spark_marts, wait_while_derby_is_booted
from pipelines.transform.translator import GovperfTranslator
from pipelines.warehouse import file_lock, out_of_memory_advice, wait_while_another_process_holds, warehouse_lock

ensure_manifest()


def dbt_manifest() -> dict[str, Any]:
    return json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))


# The models that read what a Python asset made from the marts (the forecasts) are
# built by a second, small dbt step after that asset. In the same step as the rest,
# Dagster would have to split the step to order it around the asset (a cycle between
# steps), and it splits it in four.
AFTER_MARTS_ANALYTICS = "stg_lake__target_forecasts fct_target_forecasts"
# What both dbt steps share: the project, the keys, the months, one writer at a time.
DBT_STEP = {
    "manifest": dbt_project.manifest_path,
    "project": dbt_project,
    "dagster_dbt_translator": GovperfTranslator(),
    "partitions_def": monthly,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "pool": "duckdb_writer",
}


@dbt_assets(
    **DBT_STEP,
    name="govperf_dbt_models",
    exclude=AFTER_MARTS_ANALYTICS,
)
def govperf_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    yield from build(context, dbt)


@dbt_assets(
    **DBT_STEP,
    name="govperf_dbt_forecast_models",
    select=AFTER_MARTS_ANALYTICS,
)
def govperf_dbt_forecast_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    yield from build(context, dbt)


def build(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """dbt build of the step's models for the run's months, under the gate and the
    warehouse lock, recorded in the ledger and the stamps."""
    s = settings()
    months = months_of(context)
    try:
        gate.assert_open(s.lake, months, "Scoring")
    except gate.GateClosed as refusal:
        raise dg.Failure(description=str(refusal)) from None

    os.environ.update(dbt_environment())
    # This home's own folders: parallel homes never share dbt's target or logs.
    target = invocation_dir(f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}")
    store = StampStore(s.home)
    window = [month.isoformat() for month in months]
    built_from = built_from_stamps(store, s, months[-1])
    # A month before the window whose inputs changed since it was built (a file this
    # run landed carries rows dated in it) is not rebuilt by this build, and the
    # window's months read it: they are not recorded as built either, so that the next
    # run (govperf run starts it at once) scores from that month through these.
    recorded = store.read(stamps.STEP)
    behind = sorted(m for m in built_from if m < window[0] and m in recorded and recorded[m] != built_from[m])
    with warehouse_lock(exclusive=True), engine_lock(s):
        wait_while_another_process_holds(s.duckdb_path, on_wait=context.log.warning)
        if engine() == "spark":
            wait_while_derby_is_booted(s.spark_home / "metastore_db", on_wait=context.log.warning)
        refuse_a_warehouse_changed_outside_dbt(s)
        store.forget(stamps.STEP, window)  # until this build succeeds, its months are to be redone
        events.ledger_of(s.home).append("dbt_build_started", {"run_id": context.run.run_id})
        with build_window(months[0], months[-1], lookback_months(load_catalogue(s.reference_dir))):
            invocation = dbt.cli(
                ["build", "--exclude", "test_type:unit", "--log-path", str(home_log_dir())],
                target_path=target,
                context=context,
                raise_on_error=False,
            )
        produced = set()
        for event in invocation.stream():
            if isinstance(event, dg.Output):
                produced.add(event.output_name)
            yield event
        # A model dbt built whose event Dagster did not read has no output: Dagster would
        # skip every step after it while the run succeeds, a half result. Such a build
        # counts as failed (ledger, stamps, gate) and the step fails naming the models.
        unread = sorted(
            key.to_user_string() for key in context.selected_asset_keys if key.to_python_identifier() not in produced
        )
        succeeded = invocation.is_successful() and not unread
        if engine() == "spark":  # the public contract: the marts in the DuckDB file, as views of Spark's Parquet
            publish_spark_marts(s.duckdb_path, s.spark_home / "warehouse", dbt_project.manifest_path)
        # Read while the lock is still held: the digests are of exactly what this build left.
        record_build(context, months, succeeded, target)
        if succeeded and not behind:
            store.record(stamps.STEP, {month: built_from[month] for month in window})
        elif succeeded:
            context.log.warning(
                f"{behind[0][:7]}..{behind[-1][:7]} changed since scored (rows dated in them came in files landed "
                f"now): {window[0][:7]}..{window[-1][:7]} stay to be scored again with them"
            )
    try:  # housekeeping of caches: a failure costs the next build a parse, never this build
        keep_parse(target)
        prune_invocations()
    except OSError as error:
        context.log.warning(f"dbt parse cache not updated: {error}")
    for month in months:
        gate.record(
            s.lake,
            "scoring",
            month,
            "dbt_build",
            [
                CheckOutcome(
                    "scoring",
                    month,
                    None,
                    "dbt_build",
                    "error",
                    succeeded,
                    "dbt build 成功" if succeeded else "dbt build 失败：模型或测试未通过 (see the run's dbt logs)",
                )
            ],
        )
    events.record_lake_files(s.home, [gate.check_results_dir(s.lake) / "scoring"])
    context.log_event(
        dg.AssetObservation(
            asset_key=dg.AssetKey(["marts", "fct_rankings"]), metadata=events.checkpoint_metadata(s.home)
        )
    )
    if not succeeded and invocation.is_successful():  # succeeded, but not every model's event was read
        raise dg.Failure(
            description=f"dbt reported success for {months[0]:%Y-%m}..{months[-1]:%Y-%m}, but the events of "
            f"{len(unread)} models were not read ({', '.join(unread[:5])}{' …' if len(unread) > 5 else ''}): "
            "the steps after them cannot run on what this build made. Run again; dbt's own log is in the "
            "home's dbt/logs"
        )
    if not succeeded:
        raise dg.Failure(
            description=f"dbt build failed for {months[0]:%Y-%m}..{months[-1]:%Y-%m}; see the dbt events above"
            + out_of_memory_hint(target)
        )


def built_from_stamps(store: StampStore, s, last_month) -> dict[str, dict]:
    """The stamps of the months through `last_month` as this build reads them: from the
    ingest stamps recorded by the steps that landed them (pipelines/transform/stamps.py)."""
    months = [m.isoformat() for m in months_through(FIRST_MONTH, last_month)]
    ingest = {source: store.read(step_name(source)) for source in load_mappings(s.mappings_dir)}
    return stamps.month_stamps(ingest, s.reference_dir, months, s.lake, stamps.appeals_in_lake(s.lake))


def models_built(target: Path) -> list[str]:
    """The dbt nodes this build ran successfully, from its run_results.json."""
    try:
        results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(r["unique_id"] for r in results if r.get("status") in ("success", "pass"))


def out_of_memory_hint(target: Path) -> str:
    """What to do when a model failed for want of memory: DuckDB's limit is configuration."""
    try:
        results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return ""
    starved = sorted(r["unique_id"] for r in results if "Out of Memory" in (r.get("message") or ""))
    if not starved:
        return ""
    return f". {', '.join(starved)}: {out_of_memory_advice()}"


def engine_lock(s) -> contextlib.AbstractContextManager:
    """On Spark, one dbt process per home at a time: its embedded Derby metastore serves one JVM."""
    if engine() != "spark":
        return contextlib.nullcontext()
    return file_lock(s.spark_home / "metastore.lock", exclusive=True)


def warehouse_sha256(s, built_on: str | None = None) -> str:
    """The bytes a build on `built_on` (this run's engine by default) left: the DuckDB
    file's, and after a Spark build also its marts' Parquet files."""
    digest = events.file_sha256(s.duckdb_path)
    if (built_on or engine()) == "spark":
        parquet = marts_files_sha256(s.spark_home / "warehouse", dbt_project.manifest_path)
        digest = hashlib.sha256(f"{digest}:{parquet}".encode()).hexdigest()
    return digest


def record_build(context: dg.AssetExecutionContext, months: list, succeeded: bool, target: Path) -> None:
    """The ledger's dbt build entry: the models built and every mart's digest per period."""
    s = settings()
    if not s.duckdb_path.is_file():
        return
    # Only the groups whose fingerprint changed are hashed again: the last entry
    # describes the warehouse this build started from (refuse_a_warehouse_changed_outside_dbt).
    last = events.last_build(s.home)
    known = (last.body["marts"], last.body.get("fingerprints") or {}) if last is not None else None
    marts, fingerprints = warehouse_digests(s.duckdb_path, known)  # under the build's exclusive lock
    events.record_build(
        s.home,
        context.run.run_id,
        months,
        succeeded,
        models_built(target),
        marts,
        warehouse_sha256(s),
        fingerprints,
        engine(),
    )


def refuse_a_warehouse_changed_outside_dbt(s) -> None:
    """A build must not record, as its own, marts someone changed by hand since the last
    build: it would launder the edit. A build that was interrupted (its start recorded,
    no end) left the marts unrecorded; the next build records them again."""
    ledger = events.ledger_of(s.home)
    last = next((e for e in reversed(ledger.entries()) if e.kind in ("dbt_build", "dbt_build_started")), None)
    if last is None or last.kind != "dbt_build" or not s.duckdb_path.is_file():
        return
    # the marts as the last build left them: a DuckDB build's tables, or a Spark build's
    # views. An entry from before the engine was recorded reads as a DuckDB build's: after
    # a Spark build that only skips the views' re-registration, and the digests decide.
    built_on = last.body.get("engine", "duckdb")
    if last.body.get("warehouse_sha256") == warehouse_sha256(s, built_on):
        return  # the very bytes that build left: its digests still hold (hashing takes 1/50 of recomputing)
    if built_on == "spark" and engine() == "spark":
        # the views as this build will read them: a file put into a mart's folder since
        # the last build shows in them (the last build's views might not read it). Not
        # after a DuckDB build: its tables are the marts, and views of Spark's folders
        # (empty, or an older Spark build's) would replace them before they are read.
        publish_spark_marts(s.duckdb_path, s.spark_home / "warehouse", dbt_project.manifest_path)
    problems = differences(last.body["marts"], warehouse_digests(s.duckdb_path, fingerprint=False)[0])  # under the lock
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise dg.Failure(
            description=f"the warehouse {s.duckdb_path} was changed outside dbt since the last build "
            f"(ledger entry {last.index}): {shown}. See `govperf verify`; to rebuild the marts from the lake, "
            "move the warehouse file aside and run again"
        )
