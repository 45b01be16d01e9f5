"""Dagster assets that bring data in: reference data, and one ingest asset per
source mapping. They write Parquet only and never open the warehouse file.

Each ingest asset lands the month's files of its source and reports, as blocking
checks, what a performance office must know before it scores: that every file
could be read, that no row was lost, that few rows were quarantined, and (as a
warning) which departments sent nothing.
"""

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import year_freeze
from pipelines.appeals.store import APPEALS_SCHEMA, appeals_table, current_appeals
from pipelines.checks import gate
from pipelines.checks.gate import CheckOutcome
from pipelines.checks.per_month import MonthlyCheckResults, monthly_check_spec
from pipelines.checks.suites import Suite, load_suites
from pipelines.ingest import stamps, submissions
from pipelines.ingest.canonical import CANONICAL
from pipelines.ingest.frozen import land_unless_frozen
from pipelines.ingest.land import (
    FILE_LOAD_SCHEMA,
    FORECAST_FOLDER,
    FORECAST_SCHEMA,
    QUARANTINE_SCHEMA,
    SENTIMENT_FOLDER,
    SENTIMENT_SCHEMA,
    FileLanding,
    empty_source_file,
    lake_paths,
)
from pipelines.ingest.mapping import SourceMapping, load_mappings
from pipelines.ledger import events
from pipelines.parquet import write_table
from pipelines.partitions import FIRST_MONTH, monthly, months_of
from pipelines.reference import DepartmentRegistry, load_departments, reference_tables
from pipelines.settings import QUALITY_DIR, settings
from pipelines.stamps import StampStore
from pipelines.text import printable

REFERENCE_TABLES = (
    "departments",
    "catalogue_nodes",
    "catalogue_grades",
    "catalogue_annual_weights",
    "catalogue_versions",
    "calendar_exceptions",
    "robustness_draws",
)
# Not YAML: the appeals and decisions recorded by `govperf appeal` (pipelines/appeals),
# written beside the reference tables, as they stand, on every scoring run.
APPEALS_TABLE = "appeals"
DEPARTMENTS_KEY = dg.AssetKey(["reference", "departments"])
SINGLE_RUN = dg.BackfillPolicy.single_run()

FILE_CHECKS = {
    "file_readable": ("error", "Every file of the month could be decoded and has the mapped columns."),
    "rows_balanced": ("error", "Per file, rows read from the raw records = rows accepted + rows quarantined."),
    "quarantine_within_limit": ("error", "Per file, the quarantined share is within the mapping's limit."),
    "duplicate_delivery": ("warning", "No file of the month has the same bytes as another under a second name."),
    "year_frozen": ("warning", "No file of the month was refused because its year is frozen (封账)."),
}
SOURCE_CHECKS = {
    "departments_reported": "Every department in office delivered its rows by the submission deadline.",
    "volume_within_history": "Each department's rows are in line with its own recent history.",
}


def check_severities(suite: "Suite | None") -> dict[str, str]:
    """Each check this source runs, with its severity (from quality/<source>.yaml)."""
    severities = {name: severity for name, (severity, _text) in FILE_CHECKS.items()}
    if suite and suite.completeness:
        severities["departments_reported"] = suite.completeness.severity
    if suite and suite.volume:
        severities["volume_within_history"] = suite.volume.severity
    return severities


def ingest_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["ingest", source])


# ------------------------------------------------------------------ reference data


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["reference", name],
            group_name="reference",
            kinds={"yaml", "parquet"},
            description=f"Reference table {name}, validated from sources/reference/*.yaml."
            if name != APPEALS_TABLE
            else "The appeals (申诉复核) and their decisions, from GOVPERF_HOME/state/appeals.jsonl.",
        )
        for name in (*REFERENCE_TABLES, APPEALS_TABLE)
    ],
    partitions_def=monthly,
    backfill_policy=SINGLE_RUN,
    name="reference_data",
)
def reference_data(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
    """Departments, indicator catalogue and holiday calendar: validated YAML → Parquet.
    Validated at every run, so a month is scored with the reference data as it stands."""
    s = settings()
    tables = reference_tables(s.reference_dir) | {APPEALS_TABLE: appeals_table(current_appeals(s.home))}
    target_dir = s.lake / "reference"
    target_dir.mkdir(parents=True, exist_ok=True)
    ensure_lake_schemas(s.lake)
    if events.record_configuration(s.home, s.config_dir):
        context.log.info("ledger: the configuration changed since the last run; its fingerprint is recorded")
    for name in (*REFERENCE_TABLES, APPEALS_TABLE):
        path = target_dir / f"{name}.parquet"
        write_table(tables[name], path)
        if name == APPEALS_TABLE:
            events.record_lake_files(s.home, [target_dir])
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["reference", name]),
            metadata={"rows": len(tables[name]), "path": dg.MetadataValue.path(str(path))},
        )


def source_folders(lake: Path, source: str) -> list[Path]:
    """Every lake folder an ingest step of `source` writes (its landings, their history,
    the register and the check results), for the ledger's record of the lake's files."""
    mine = [lake / source, lake / "quarantine" / source, lake / "file_loads" / source, lake / "submissions" / source]
    mine.append(lake / "check_results" / source)
    return [*mine, *(lake / "history" / p.relative_to(lake) for p in mine[:4])]


def ensure_lake_schemas(lake: Path) -> None:
    """Zero-row files so that dbt can read every source before its first extract."""
    for table in CANONICAL.values():
        empty_source_file(lake, table)
        empty_source_file(lake / "history", table)
    for target, schema in (
        (lake / "file_loads" / "_schema" / "_schema" / "empty.parquet", FILE_LOAD_SCHEMA),
        (lake / "quarantine" / "_schema" / "_schema" / "empty.parquet", QUARANTINE_SCHEMA),
        (lake / "submissions" / "_schema" / "_schema" / "empty.parquet", submissions.REGISTER_SCHEMA),
        # the comments' scores (analytics/comment_sentiment), read as comment_sentiment/*/*.parquet
        (lake / SENTIMENT_FOLDER / "_schema" / "empty.parquet", SENTIMENT_SCHEMA),
        # the forecasts (analytics/target_forecasts), read as target_forecasts/*/*.parquet
        (lake / FORECAST_FOLDER / "_schema" / "empty.parquet", FORECAST_SCHEMA),
        # the appeals (reference/appeals.parquet), before any run wrote them
        (lake / "reference" / f"{APPEALS_TABLE}.parquet", APPEALS_SCHEMA),
    ):
        # Rewritten when the schema grew in an upgrade; written beside and renamed,
        # because two runs starting together both get here (one may read it meanwhile).
        if not target.exists() or pq.read_schema(target).names != schema.names:
            write_table(pa.Table.from_pylist([], schema=schema), target)
    gate.empty_check_file(lake)


# ------------------------------------------------------------------ ingest


def files_for_month(inbox: Path, mapping: SourceMapping, month: dt.date) -> list[Path]:
    return [p for p in sorted(inbox.glob(mapping.file_pattern)) if p.is_file() and mapping.period_of(p.name) == month]


def ingest_month(
    mapping: SourceMapping,
    month: dt.date,
    registry: DepartmentRegistry,
    inbox: Path,
    lake: Path,
    archive: Path,
    suite: Suite | None = None,
    today: dt.date | None = None,
) -> tuple[list[FileLanding], list[CheckOutcome]]:
    """Land every file of one source and month, register which file is current
    for each department, and return the landings and the file checks."""
    # Earliest delivered first: of two names for the same bytes, the first one is the
    # submission (and its time the delivery time), the later one a duplicate.
    files = sorted(files_for_month(inbox, mapping, month), key=lambda p: (p.stat().st_mtime, p.as_posix()))
    # A frozen year (封账) takes no new delivery: the lake is GOVPERF_HOME/lake (settings.py).
    frozen = year_freeze.frozen_years(lake.parent).get(month.year)
    delivered = [
        (
            p.relative_to(inbox).as_posix(),
            land_unless_frozen(p, p.relative_to(inbox).as_posix(), mapping, month, registry, lake, archive, frozen),
        )
        for p in files
    ]
    landings, duplicates = submissions.distinct_deliveries(mapping.source, month, delivered)
    submissions.move_withdrawn_to_history(lake, mapping.source, month, {landing.file_hash for landing in landings})
    register = submissions.build_register(mapping, month, landings, lake)
    submissions.write_register(lake, mapping.source, month, register)
    outcomes = file_check_outcomes(mapping, month, landings) + duplicates
    if suite and suite.completeness and mapping.is_period_start(month):
        outcomes.append(
            submissions.completeness_outcome(
                mapping,
                month,
                register.to_pylist(),
                registry,
                suite.completeness.severity,
                today or dt.date.today(),
            )
        )
    return landings, outcomes


def volume_outcomes(
    mapping: SourceMapping, months: list[dt.date], lake: Path, suite: Suite | None, registry: DepartmentRegistry
) -> list[CheckOutcome]:
    """The volume check of each month, read from the registers of it and the
    months before (landed in this run or earlier), for the departments in office."""
    if not suite or not suite.volume:
        return []
    volume = suite.volume
    outcomes = []
    for month in months:
        if not mapping.is_period_start(month):
            continue
        periods = [month]
        while len(periods) <= volume.lookback * mapping.months_per_period:
            periods.append((periods[-1] - dt.timedelta(days=1)).replace(day=1))
        history = {p: submissions.read_register(lake, mapping.source, p) for p in periods if mapping.is_period_start(p)}
        outcomes.append(
            submissions.volume_outcome(
                mapping,
                month,
                history,
                volume.lookback,
                volume.min_ratio,
                volume.max_ratio,
                volume.min_rows,
                volume.severity,
                registry,
                mapping.months_per_period,
            )
        )
    return outcomes


def file_check_outcomes(mapping: SourceMapping, month: dt.date, landings: list[FileLanding]) -> list[CheckOutcome]:
    outcomes = []
    for landing in landings:
        share = landing.rows_quarantined / landing.rows_read if landing.rows_read else 0.0
        common = {"source": mapping.source, "period": month, "file_hash": landing.file_hash}
        if year_freeze.is_refusal(landing.file_error):
            # Refused whole for a frozen year: a warning, never blocking (the month keeps
            # the data it was frozen with); its lines are in quarantine, so rows still balance.
            outcomes += [
                CheckOutcome(
                    **common, check_name="year_frozen", severity="warning", passed=False, details=landing.file_error
                ),
                CheckOutcome(
                    **common,
                    check_name="rows_balanced",
                    severity="error",
                    passed=landing.balanced,
                    details=f"{printable(landing.file_name)}: 读入 {landing.rows_read} = 接收 0"
                    f" + 隔离 {landing.rows_quarantined} (refused: year frozen)",
                ),
            ]
            continue
        outcomes += [
            CheckOutcome(
                **common,
                check_name="file_readable",
                severity="error",
                passed=landing.file_error is None,
                details=landing.file_error
                or f"{printable(landing.file_name)}: 编码 {landing.encoding or mapping.format}",
            ),
            CheckOutcome(
                **common,
                check_name="rows_balanced",
                severity="error",
                passed=landing.balanced,
                details=(
                    f"{printable(landing.file_name)}: 读入 {landing.rows_read} = 接收 {landing.rows_accepted}"
                    f" + 隔离 {landing.rows_quarantined}"
                    + ("" if landing.balanced else " 不相等：有行丢失 (rows lost)")
                ),
            ),
            CheckOutcome(
                **common,
                check_name="quarantine_within_limit",
                severity="error",
                passed=landing.file_error is None and share <= mapping.max_quarantine_share,
                details=f"{printable(landing.file_name)}: 隔离比例 {share:.2%}，上限 {mapping.max_quarantine_share:.2%}",
            ),
        ]
    return outcomes


def build_ingest_asset(mapping: SourceMapping) -> dg.AssetsDefinition:
    key = ingest_key(mapping.source)
    suite = load_suites(QUALITY_DIR).get(mapping.source)
    severities = check_severities(suite)
    descriptions = {name: text for name, (_severity, text) in FILE_CHECKS.items()} | SOURCE_CHECKS
    specs = [
        monthly_check_spec(name, asset=key, blocking=severity == "error", description=descriptions[name])
        for name, severity in severities.items()
    ]

    @dg.asset(
        key=key,
        deps=[DEPARTMENTS_KEY],
        partitions_def=monthly,
        backfill_policy=SINGLE_RUN,
        group_name="ingest",
        kinds={"parquet"},
        check_specs=specs,
        description=f"{mapping.description}. Files matching `{mapping.file_pattern}` → canonical Parquet.",
        metadata={"mapping": dg.MetadataValue.path(f"sources/mappings/{mapping.source}.yaml")},
    )
    def _ingest(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        s = settings()
        registry = load_departments(s.reference_dir)
        all_landings: list[FileLanding] = []
        all_outcomes: list[CheckOutcome] = []
        months = months_of(context)
        today = dt.date.today()
        # What this step reads, taken before it reads it: a file changed meanwhile is seen next run.
        read_from = stamps.month_stamps(mapping, registry, suite, s.inbox, FIRST_MONTH, months[-1], today, home=s.home)

        def ingest(month: dt.date) -> tuple[list[FileLanding], list[CheckOutcome]]:
            return ingest_month(mapping, month, registry, s.inbox, s.lake, s.archive, suite, today)

        # Two months at a time: DuckDB releases the GIL, so one month's SQL runs
        # while the other's file is decoded in Python.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for landings, outcomes in pool.map(ingest, months):
                all_landings += landings
                all_outcomes += outcomes
        # After every month is registered: a month's volume reads the months before it.
        all_outcomes += volume_outcomes(mapping, months, s.lake, suite, registry)
        for month in months:
            gate.record(s.lake, mapping.source, month, "ingest", [o for o in all_outcomes if o.period == month])
        for landing in all_landings:
            context.log.info(
                f"{printable(landing.file_name)} sha256={landing.file_hash[:12]}… read={landing.rows_read} "
                f"accepted={landing.rows_accepted} quarantined={landing.rows_quarantined}"
            )
        # The evidence of what landed, in the ledger, signed before the step ends.
        events.record_landings(s.home, all_landings, lambda x: lake_paths(s.lake, x.source, x.period, x.file_hash))
        events.record_lake_files(s.home, source_folders(s.lake, mapping.source))
        # Done once its quality suite has also run on what landed (checks/assets.py promotes it).
        StampStore(s.home).record(
            stamps.step_name(mapping.source),
            {m.isoformat(): read_from[m.isoformat()] for m in months},
            pending=suite is not None,
        )
        yield dg.MaterializeResult(metadata=_landing_metadata(all_landings) | events.checkpoint_metadata(s.home))
        results = MonthlyCheckResults(context)  # one result per month: pipelines/checks/per_month.py says why
        for name, severity in severities.items():
            yield results.output(key, name)
            for month in months:
                relevant = [o for o in all_outcomes if o.check_name == name and o.period == month]
                failed = [o for o in relevant if not o.passed]
                yield results.evaluation(
                    key,
                    name,
                    month,
                    passed=not failed,
                    severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
                    description=f"{month:%Y-%m}: {len(failed)} of {len(relevant)} failed"
                    if failed
                    else f"{month:%Y-%m}: {len(relevant)} checked, none failed",
                    metadata={
                        "checked": len(relevant),
                        "failed": len(failed),
                        "details": dg.MetadataValue.md(
                            "\n".join(f"- {o.period:%Y-%m}: {o.details}" for o in (failed or relevant)[:50]) or "-"
                        ),
                    },
                )

    return _ingest


def _landing_metadata(landings: list[FileLanding]) -> dict:
    rows = ["| file | sha256 | encoding | read | accepted | quarantined |", "|---|---|---|---|---|---|"]
    rows += [
        f"| {printable(x.file_name)} | `{x.file_hash[:16]}` | {x.encoding or x.file_format} | {x.rows_read} | "
        f"{x.rows_accepted} | {x.rows_quarantined} |"
        for x in landings
    ]
    return {
        "files": len(landings),
        "rows_read": sum(x.rows_read for x in landings),
        "rows_accepted": sum(x.rows_accepted for x in landings),
        "rows_quarantined": sum(x.rows_quarantined for x in landings),
        "file_hashes": dg.MetadataValue.md("\n".join(rows)),
    }


def build_ingest_assets(mappings_dir: Path | None = None) -> list[dg.AssetsDefinition]:
    mappings = load_mappings(mappings_dir or settings().mappings_dir)
    return [build_ingest_asset(m) for m in mappings.values()]
