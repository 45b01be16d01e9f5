"""Jobs, schedules and the sensor an analyst turns on in the UI.

- daily ingest: every morning, the current and the previous month (late files);
- monthly scoring and bulletin: on the 8th, for the month before, after the
  submission deadlines; it refuses a month whose latest ingest failed its gate;
  the run of a quarter's last month drafts the quarterly edition too;
- quarterly bulletin: on the day bulletin.yaml gives in the month after a quarter,
  the quarter's last month is scored and drafted again, so the quarterly edition
  includes what arrived late (leader reviews, corrected files);
- annual appraisal (年度绩效考核): on the day bulletin.yaml gives early in the next
  year, the year's December is scored and drafted again, annual edition included;
- new-extract sensor: a file whose bytes have not landed (new, or changed) starts
  the ingest of the month its name carries; the lake's file log, by SHA-256, says
  what has landed.

Runs launched from the UI wait in Dagster's run queue (pipelines/run_queue.py).
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg

from pipelines.ingest.land import lake_paths, sha256_of
from pipelines.ingest.mapping import SourceMapping, load_mappings
from pipelines.partitions import FIRST_MONTH, monthly
from pipelines.publish.approval import PUBLISHED_EDITIONS_KEY
from pipelines.run_queue import WAREHOUSE_WRITER_TAGS
from pipelines.settings import settings

# Approvals are partitioned by edition and launched by `govperf approve` only.
APPROVALS = dg.AssetSelection.assets(PUBLISHED_EDITIONS_KEY)

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("reference", "ingest"),
    partitions_def=monthly,
    description="Land the month's extracts as Parquet and run the quality gate.",
)

scoring_and_bulletin_job = dg.define_asset_job(
    "monthly_scoring_and_bulletin_job",
    selection=dg.AssetSelection.groups("reference", "analytics", "staging", "intermediate", "marts", "publish")
    - APPROVALS,
    partitions_def=monthly,
    description="Score the month with dbt, check the marts, render the bulletin.",
    tags=WAREHOUSE_WRITER_TAGS,  # queued one at a time: DuckDB has one writer
)

full_pipeline_job = dg.define_asset_job(
    "full_pipeline_job",
    selection=dg.AssetSelection.all() - APPROVALS,
    partitions_def=monthly,
    description="Everything from extract to bulletin (what `govperf run` launches).",
    tags=WAREHOUSE_WRITER_TAGS,
)


def _month_key(day: dt.date) -> str:
    return day.replace(day=1).isoformat()


def _previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _quarter_start(day: dt.date) -> dt.date:
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


@dg.schedule(job=ingest_job, cron_schedule="0 6 * * *", execution_timezone="Asia/Shanghai")
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext):
    """The previous and current month, the current and previous quarter's first month
    (where quarterly files such as leader reviews are filed), and the current and
    previous year's January (where yearly files are)."""
    today = context.scheduled_execution_time.date()
    this_quarter = _quarter_start(today)
    last_quarter = _quarter_start(this_quarter - dt.timedelta(days=1))
    months = {_previous_month(today), today.replace(day=1), this_quarter, last_quarter}
    if any(m.months_per_period == 12 for m in load_mappings(settings().mappings_dir).values()):
        months |= {today.replace(month=1, day=1), today.replace(year=today.year - 1, month=1, day=1)}
    months = {month for month in months if month >= FIRST_MONTH}
    for month in sorted(months):
        yield dg.RunRequest(run_key=f"{today}:{month:%Y-%m}", partition_key=_month_key(month))


@dg.schedule(job=scoring_and_bulletin_job, cron_schedule="0 7 8 * *", execution_timezone="Asia/Shanghai")
def monthly_scoring_schedule(context: dg.ScheduleEvaluationContext):
    month = _previous_month(context.scheduled_execution_time.date())
    return dg.RunRequest(run_key=f"{month:%Y-%m}", partition_key=_month_key(month))


def _quarterly_cron() -> str:
    from pipelines.publish.config import load_bulletin_config

    when = load_bulletin_config(settings().reference_dir).quarterly_schedule
    return f"0 {when.hour} {when.day} 1,4,7,10 *"


@dg.schedule(job=scoring_and_bulletin_job, cron_schedule=_quarterly_cron(), execution_timezone="Asia/Shanghai")
def quarterly_bulletin_schedule(context: dg.ScheduleEvaluationContext):
    """The quarter before: its last month's scoring and bulletins, quarterly edition included."""
    last_month = _previous_month(context.scheduled_execution_time.date())
    return dg.RunRequest(run_key=f"quarter:{last_month:%Y-%m}", partition_key=_month_key(last_month))


def _annual_cron() -> str:
    from pipelines.publish.config import load_bulletin_config

    when = load_bulletin_config(settings().reference_dir).annual_schedule
    return f"0 {when.hour} {when.day} {when.month} *"


@dg.schedule(job=scoring_and_bulletin_job, cron_schedule=_annual_cron(), execution_timezone="Asia/Shanghai")
def annual_appraisal_schedule(context: dg.ScheduleEvaluationContext):
    """The year before: its December's scoring and bulletins, the annual edition (年度绩效考核) included."""
    december = context.scheduled_execution_time.date().replace(month=1, day=1) - dt.timedelta(days=31)
    return dg.RunRequest(run_key=f"year:{december.year}", partition_key=_month_key(december))


# Cursor layout version; a cursor of another layout is dropped (every file hashed once).
CURSOR_VERSION = 2


def _has_landed(lake: Path, mapping: SourceMapping, period: dt.date, file_hash: str) -> bool:
    """The lake's file log holds these bytes for this source and period (land_file's test)."""
    paths = lake_paths(lake, mapping.source, period, file_hash)
    return paths["file_load"].exists() and paths["accepted"].exists()


def _read_cursor(cursor: str | None) -> dict[str, list]:
    """name -> [size, mtime_ns, sha256, requested] of each inbox file at the last
    tick; `requested`: a run was asked for these bytes, which had not landed."""
    try:
        saved = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    if not isinstance(saved, dict) or saved.get("version") != CURSOR_VERSION:
        return {}  # written by an older sensor, which kept no hashes
    return {
        name: entry for name, entry in saved.get("files", {}).items() if isinstance(entry, list) and len(entry) == 4
    }


def _requests_made(cursor: str | None) -> int:
    """How many runs the sensor has asked for, so that each request has a key of its own."""
    try:
        saved = json.loads(cursor) if cursor else {}
    except ValueError:
        return 0
    made = saved.get("requests", 0) if isinstance(saved, dict) else 0
    return made if isinstance(made, int) and made >= 0 else 0


def unlanded_files(
    inbox: Path, lake: Path, mappings_dir: Path, known: dict[str, list]
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list]]:
    """The inbox's files whose bytes the file log does not hold for their period
    and for which no run was asked yet, by month: {month key: [(name, sha256)]};
    and the cursor entries to keep. A file is hashed only when its size or
    modification time differs from `known`, but what runs is decided by the hash:
    a file touched with the same bytes runs nothing."""
    months: dict[str, list[tuple[str, str]]] = {}
    entries: dict[str, list] = {}
    for mapping in load_mappings(mappings_dir).values():
        for path in sorted(inbox.glob(mapping.file_pattern)):
            period = mapping.period_of(path.name)
            if period is None or not path.is_file():
                continue
            name = path.relative_to(inbox).as_posix()
            stat = path.stat()
            size, mtime, earlier_hash, requested = known.get(name, [None, None, None, False])
            same_stat = [size, mtime] == [stat.st_size, stat.st_mtime_ns]
            file_hash = earlier_hash if same_stat else sha256_of(path)
            requested = requested and file_hash == earlier_hash
            if _has_landed(lake, mapping, period, file_hash):
                requested = False
            elif not requested:
                months.setdefault(_month_key(period), []).append((name, file_hash))
                requested = True
            entries[name] = [stat.st_size, stat.st_mtime_ns, file_hash, requested]
    return months, entries


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_extract_sensor(context: dg.SensorEvaluationContext):
    """One ingest run per month holding a file whose bytes have not landed: a new
    file, or one whose bytes changed. Files already in the lake's file log start
    nothing, so turning the sensor on over a landed inbox launches no run."""
    s = settings()
    months, entries = unlanded_files(s.inbox, s.lake, s.mappings_dir, _read_cursor(context.cursor))
    made = _requests_made(context.cursor)
    for key, files in sorted(months.items()):
        # Dagster launches a run key once, ever: the same bytes asked for again (taken
        # out and put back before they landed) need a key of their own, so the count
        # of requests is part of it. The cursor's `requested` flags keep a tick from
        # asking twice.
        content = "|".join(f"{name}={file_hash}" for name, file_hash in files)
        made += 1
        yield dg.RunRequest(
            run_key=f"{key}:{hashlib.sha256(content.encode()).hexdigest()[:16]}:{made}",
            partition_key=key,
            tags={"govperf/new_files": ", ".join(name for name, _ in files)[:1000]},
        )
    context.update_cursor(json.dumps({"version": CURSOR_VERSION, "files": entries, "requests": made}, sort_keys=True))
