"""Jobs, schedules and the sensor an analyst turns on in the UI.

- daily ingest: every morning, the current and the previous month (late files);
- monthly scoring and bulletin: on the 8th, for the month before, after the
  submission deadlines; it refuses a month whose latest ingest failed its gate;
  the run of a quarter's last month drafts the quarterly edition too;
- quarterly bulletin: on the day bulletin.yaml gives in the month after a quarter,
  the quarter's last month is scored and drafted again, so the quarterly edition
  includes what arrived late (leader reviews, corrected files);
- new-extract sensor: a file appearing (or changing) in the inbox starts the
  ingest of the month its name carries.
"""


import datetime as dt
import hashlib
import json

import dagster as dg

from pipelines.ingest.mapping import load_mappings
from pipelines.partitions import monthly
from pipelines.settings import settings

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("reference", "ingest"),
    partitions_def=monthly,
    description="Land the month's extracts as Parquet and run the quality gate.",
)

scoring_and_bulletin_job = dg.define_asset_job(
    "monthly_scoring_and_bulletin_job",
    selection=dg.AssetSelection.groups("reference", "staging", "intermediate", "marts", "publish"),
    partitions_def=monthly,
    description="Score the month with dbt, check the marts, render the bulletin.",
)

full_pipeline_job = dg.define_asset_job(
    "full_pipeline_job",
    selection=dg.AssetSelection.all(),
    partitions_def=monthly,
    description="Everything from extract to bulletin (what `govperf run` launches).",
)


def _month_key(day: dt.date) -> str:
    return day.replace(day=1).isoformat()


def _previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _quarter_start(day: dt.date) -> dt.date:
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


@dg.schedule(job=ingest_job, cron_schedule="0 6 * * *", execution_timezone="Asia/Shanghai")
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext):
    """The previous and current month, and the current and previous quarter's
    first month (where quarterly files such as leader reviews are filed)."""
    today = context.scheduled_execution_time.date()
    this_quarter = _quarter_start(today)
    last_quarter = _quarter_start(this_quarter - dt.timedelta(days=1))
    months = {_previous_month(today), today.replace(day=1), this_quarter, last_quarter}
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


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_extract_sensor(context: dg.SensorEvaluationContext):
    """Compares each extract's size and modification time with the cursor."""
    s = settings()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    months: dict[str, list[str]] = {}
    for mapping in load_mappings(s.mappings_dir).values():
        for path in sorted(s.inbox.glob(mapping.file_pattern)):
            period = mapping.period_of(path.name)
            if period is None or not path.is_file():
                continue
            stat = path.stat()
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
            name = path.relative_to(s.inbox).as_posix()
            if seen.get(name) != signature:
                seen[name] = signature
                months.setdefault(_month_key(period), []).append(name)
    for key, names in sorted(months.items()):
        signatures = "|".join(f"{name}={seen[name]}" for name in names)
        yield dg.RunRequest(
            run_key=f"{key}:{hashlib.sha256(signatures.encode()).hexdigest()[:16]}",
            partition_key=key,
            tags={"govperf/new_files": ", ".join(names)[:1000]},
        )
    context.update_cursor(json.dumps(seen, sort_keys=True))
