"""Launching the Dagster graph from Python: what `govperf run` and the tests use.

Runs go through Dagster itself (the same job, checks and instance the UI shows),
never around it. A range of months is one run: every asset has a single-run
backfill policy, so dbt starts once for the whole range.
"""

from __future__ import annotations

import datetime as dt
import gc
import warnings
from pathlib import Path

import dagster as dg

from pipelines.checks.gate import check_results_dir
from pipelines.parquet import temporary_beside
from pipelines.settings import settings
from pipelines.text import printable

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _job(name: str) -> dg.JobDefinition:
    from pipelines.definitions import defs

    return defs.resolve_job_def(name)


def full_pipeline_job() -> dg.JobDefinition:
    return _job("full_pipeline_job")


def scoring_and_bulletin_job() -> dg.JobDefinition:
    return _job("monthly_scoring_and_bulletin_job")


def ingest_job() -> dg.JobDefinition:
    return _job("ingest_job")


def approval_job() -> dg.JobDefinition:
    return _job("approval_job")


JOBS = {"full": full_pipeline_job, "scoring": scoring_and_bulletin_job, "ingest": ingest_job}
# Jobs run as a selection of another's assets: only the drawing, when nothing else is out of date.
SELECTIONS = {"bulletins": ("full", [["publish", "bulletins"]])}


def instance() -> dg.DagsterInstance:
    """The persistent instance under DAGSTER_HOME, so run history survives restarts:
    created once under a lock, with the runs of killed processes marked failed."""
    from pipelines.instance import open_instance

    return open_instance(settings().dagster_home, write_dagster_yaml, settings().home)


# The first line marks the file as govperf's: without it, an operator's own file is kept.
DAGSTER_YAML_MARK = "# Written by govperf"
DAGSTER_YAML = """\
# Written by govperf (pipelines/runner.py), and written again when its settings
# change. Delete this first line to keep your own edits: govperf then leaves the
# file alone. Run history, event logs and schedules live in this folder, so they
# survive restarts of the UI and of the machine.
telemetry:
  enabled: false
# No sign-up / newsletter pop-up ("nux") in the UI: auditors open it read-only,
# and the pop-up would otherwise show on every fresh home (the webserver's
# shouldShowNux is this setting and a seen-marker file under .nux/).
nux:
  enabled: false
# Dagster's SQLite storage, in its default folders; the event log keeps its
# connections open (pipelines/dagster_storage.py says why).
{storage}
# Runs launched from the UI, its schedules and the sensor wait in this queue.
# The figure is reference/run_queue.yaml's; the tag limits are fixed
# (pipelines/run_queue.py says why).
{run_queue}"""


def dagster_yaml_text(home: Path) -> str:
    import yaml

    from pipelines.run_queue import load_config, tag_concurrency_limits

    run_queue = {
        "max_concurrent_runs": load_config().runs_at_once(),
        "tag_concurrency_limits": tag_concurrency_limits(),
    }
    storage = {
        "run_storage": _storage("dagster._core.storage.runs", "SqliteRunStorage", home / "history"),
        "event_log_storage": _storage(
            "pipelines.dagster_storage", "KeptOpenSqliteEventLogStorage", home / "history" / "runs"
        ),
        "schedule_storage": _storage("dagster._core.storage.schedules", "SqliteScheduleStorage", home / "schedules"),
    }
    return DAGSTER_YAML.format(
        storage=yaml.safe_dump(storage, sort_keys=False).rstrip(),
        run_queue=yaml.safe_dump({"run_queue": run_queue}, sort_keys=False),
    )


def _storage(module: str, class_name: str, base_dir: Path) -> dict:
    return {"module": module, "class": class_name, "config": {"base_dir": str(base_dir)}}


def write_dagster_yaml(home: Path) -> Path:
    """Write DAGSTER_HOME/dagster.yaml when it is missing or is govperf's own and
    differs (a home made by an older govperf gets the new settings). Written
    beside and renamed: two runs may start together, and the UI may be reading."""
    config = home / "dagster.yaml"
    text = dagster_yaml_text(home)
    try:
        current = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current is None or (current != text and current.startswith(DAGSTER_YAML_MARK)):
        temporary = temporary_beside(config)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(config)
    return config


def launch(
    first_month: str,
    last_month: str | None = None,
    *,
    job: str = "full",
    multiprocess: bool = False,
    dagster_instance: dg.DagsterInstance | None = None,
    skip_sources: list[str] | None = None,
    exits_after: bool = False,
) -> dg.ExecuteJobResult:
    """Execute a job over the months first..last (YYYY-MM) as one run and wait for it.
    `skip_sources`: sources whose ingest is up to date (pipelines/plan.py), left out.
    `exits_after`: the calling process ends after this run (the command line)."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    start = f"{first_month[:7]}-01"
    end = f"{(last_month or first_month)[:7]}-01"
    from pipelines.instance import mark_dead_runs_failed, process_tags

    executor = {"multiprocess": {"max_concurrent": 2}} if multiprocess else {"in_process": {}}
    job, asset_keys = SELECTIONS.get(job, (job, None))
    if skip_sources:
        skipped = {dg.AssetKey(["ingest", source]) for source in skip_sources}
        asset_keys = [key.path for key in sorted(JOBS[job]().asset_layer.selected_asset_keys) if key not in skipped]
    if dagster_instance is None:
        dagster_instance = instance()
    else:
        mark_dead_runs_failed(dagster_instance)
    if exits_after:
        # The job's definitions, Dagster and dbt's manifest are loaded and live until the
        # process ends: frozen, the collector no longer walks them on each of its passes
        # during the run (a one-month run 19.7 -> 18.4 s, measured). Not done in a process
        # that goes on (tests): objects frozen there are never searched for cycles.
        gc.freeze()
    return dg.execute_job(
        dg.reconstructable(JOBS[job]),
        instance=dagster_instance,
        asset_selection=[dg.AssetKey(key) for key in asset_keys] if asset_keys else None,
        # This process executes the run (step processes are its children): a later
        # command that finds it gone marks the run failed.
        tags={RANGE_START: start, RANGE_END: end, **process_tags()},
        run_config={
            "execution": {"config": executor},
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
        raise_on_error=False,
    )


def launch_approval(
    period: str,
    approver: str,
    note: str,
    approved_at: dt.datetime,
    *,
    with_departments: bool = False,
    force: bool = False,
    dagster_instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteJobResult:
    """Run approval_job for the edition `period` (2025-07, 2025-Q3) and wait for it: the
    edition becomes a partition of publish/published_editions, and the run publishes its
    next revision or fails with the refusal (refusal_reason says why)."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.instance import mark_dead_runs_failed, process_tags
    from pipelines.publish.approval import APPROVER_TAG, editions, run_config

    if dagster_instance is None:
        dagster_instance = instance()
    else:
        mark_dead_runs_failed(dagster_instance)
    if not dagster_instance.has_dynamic_partition(editions.name, period):
        dagster_instance.add_dynamic_partitions(editions.name, [period])
    return dg.execute_job(
        dg.reconstructable(approval_job),
        instance=dagster_instance,
        tags={"dagster/partition": period, APPROVER_TAG: approver[:200], **process_tags()},
        run_config=run_config(period, approver, note, approved_at, with_departments, force)
        # The command's answer is one sentence (published, or why not); the run's events
        # are in the UI.
        | {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )


def refusal_reason(result: dg.ExecuteJobResult) -> str:
    """Why a failed approval run refused, in one line: the description of the step's
    Failure (the refusal as approve() worded it), else what failure_messages says."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            failure = event.step_failure_data.user_failure_data
            if failure is not None and failure.description:
                return printable(failure.description.strip())
            return printable(f"{event.step_key}: {_error_chain(event.step_failure_data.error)}")
    messages = failure_messages(result)
    return messages[0] if messages else f"approval run {result.run_id} failed"


def _error_chain(error) -> str:
    """Dagster wraps the error that stopped a step; its cause is the one that says why."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " ".join(parts)


EXAMPLES_SHOWN = 3  # of a failed check's findings; the rest are in its metadata and the store


def _check_findings(evaluation) -> list[str]:
    """The findings a failed check lists in its metadata (markdown bullets: the
    same details the gate stores and an approval refusal quotes)."""
    findings = []
    for value in evaluation.metadata.values():
        if isinstance(value, dg.MarkdownMetadataValue):
            findings += [line[2:].strip() for line in (value.md_str or "").splitlines() if line.startswith("- ")]
    return findings


def failure_messages(result: dg.ExecuteJobResult) -> list[str]:
    """Why a run failed or what it skipped, in words for the person who started it:
    each failed step and blocking check with its reason and first findings, then
    where the rest is. Every message is one line (file names are escaped)."""
    messages = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check itself is listed, with its reason
            text = (
                event.step_failure_data.user_failure_data.description
                if event.step_failure_data.user_failure_data
                else None
            ) or _error_chain(error)
            if "Out of Memory" in text and "raise memory_limit in" not in text:
                from pipelines.warehouse import out_of_memory_advice

                # DuckDB's own advice is SQL (SET memory_limit=...); ours is the file that sets it.
                text = f"{text.split('Possible solutions:')[0].strip()} {out_of_memory_advice()}"
            messages.append(f"{event.step_key}: {text.strip()}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                findings = _check_findings(evaluation)
                shown = "; ".join(findings[:EXAMPLES_SHOWN])
                more = f" (and {len(findings) - EXAMPLES_SHOWN} more)" if len(findings) > EXAMPLES_SHOWN else ""
                messages.append(
                    f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed"
                    + (f": {shown}{more}" if shown else "")
                )
    if messages:
        messages.append(
            f"details: run {result.run_id} in the Dagster UI (govperf ui), and the stored check "
            f"outcomes in {check_results_dir(settings().lake)}"
        )
    return [printable(m) for m in messages]
