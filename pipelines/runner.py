"""Launching the Dagster graph from Python: what `govperf run` and the tests use.

Runs go through Dagster itself (the same job, checks and instance the UI shows),
never around it. A range of months is one run: every asset has a single-run
backfill policy, so dbt starts once for the whole range.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import dagster as dg

from pipelines.settings import settings

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


JOBS = {"full": full_pipeline_job, "scoring": scoring_and_bulletin_job, "ingest": ingest_job}


def instance() -> dg.DagsterInstance:
    """The persistent instance under DAGSTER_HOME, so run history survives restarts:
    created once under a lock, with the runs of killed processes marked failed."""
    from pipelines.instance import open_instance

    return open_instance(settings().dagster_home, DAGSTER_YAML, settings().home)


DAGSTER_YAML = """\
# Written by govperf on first use. Run history, event logs and schedules live
# in this folder, so they survive restarts of the UI and of the machine.
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
"""


def launch(
    first_month: str,
    last_month: str | None = None,
    *,
    job: str = "full",
    multiprocess: bool = False,
    dagster_instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteJobResult:
    """Execute a job over the months first..last (YYYY-MM) as one run and wait for it."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    start = f"{first_month[:7]}-01"
    end = f"{(last_month or first_month)[:7]}-01"
    from pipelines.instance import mark_dead_runs_failed, process_tags

    executor = {"multiprocess": {"max_concurrent": 2}} if multiprocess else {"in_process": {}}
    if dagster_instance is None:
        dagster_instance = instance()
    else:
        mark_dead_runs_failed(dagster_instance)
    return dg.execute_job(
        dg.reconstructable(JOBS[job]),
        instance=dagster_instance,
        # This process executes the run (step processes are its children): a later
        # command that finds it gone marks the run failed.
        tags={RANGE_START: start, RANGE_END: end, **process_tags()},
        run_config={
            "execution": {"config": executor},
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
        raise_on_error=False,
    )


def _error_chain(error) -> str:
    """Dagster wraps the error that stopped a step; its cause is the one that says why."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " ".join(parts)


def failure_messages(result: dg.ExecuteJobResult) -> list[str]:
    """Why a run failed or what it skipped, in words for the person who started it."""
    messages = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            text = (event.step_failure_data.user_failure_data.description
                    if event.step_failure_data.user_failure_data else None) or _error_chain(error)
            messages.append(f"{event.step_key}: {text.strip()}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                messages.append(f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed")
    return messages


def bulletin_paths(months: list[str]) -> list[Path]:
    """The editions a run over `months` (YYYY-MM) renders, monthly and quarterly."""
    from pipelines.publish.assets import editions_of

    days = [dt.date.fromisoformat(f"{m[:7]}-01") for m in months]
    return [settings().bulletins / e.folder / f"{e.stem}.html" for e in editions_of(days)]
