"""Publishing: a last blocking check on the marts, then the bulletin.

The check sits right before the bulletin: if it fails, the bulletin does not run
in the same run. A bulletin run started later reads the stored gate and refuses
for a month that failed any blocking check, from ingest to this one.
"""

import datetime as dt
import hashlib
from collections.abc import Iterator

import dagster as dg

from pipelines.appeals.window import record_first_drafts
from pipelines.checks import gate
from pipelines.checks.gate import CheckOutcome
from pipelines.checks.per_month import MonthlyCheckResults, monthly_check_spec
from pipelines.ledger import events
from pipelines.partitions import monthly, months_of
from pipelines.publish import stamps
from pipelines.publish.config import editions_of
from pipelines.publish.edition_folder import lock_holder, write_drafts
from pipelines.settings import settings
from pipelines.stamps import StampStore
from pipelines.transform.stamps import STEP as DBT_STEP
from pipelines.warehouse import read_warehouse

RANKINGS_KEY = dg.AssetKey(["marts", "fct_rankings"])
MART_KEYS = [
    dg.AssetKey(["marts", name])
    for name in (
        "fct_rankings",
        "fct_warnings",
        "fct_department_scores",
        "fct_indicator_values",
        "fct_data_quality",
        "fct_adjustments",
        "fct_leader_reviews",
        "fct_complaint_themes",
        "fct_comment_sentiment",
        "fct_anomalies",
        "fct_indicator_anomalies",
        "fct_target_forecasts",
        "fct_appeals",
        "dim_department",
        "dim_indicator",
        "dim_catalogue_node",
    )
]


def publication_problems(con, month: dt.date) -> list[str]:
    """What would make the month's marts unfit to publish."""
    problems = []
    # on the catalogue version's scale (docs/methodology.md §8a; [0, 100] by default, and
    # for a warehouse built before the scale was a setting)
    ranked, out_of_range = con.execute(
        """
        select count(*), count(*) filter (
            where r.composite_score not between coalesce(n.scale_lo, 0) and coalesce(n.scale_hi, 100))
        from marts.fct_rankings as r
        left join marts.dim_catalogue_node as n on n.catalogue_version = r.catalogue_version and n.level = 0
        where r.period = ? and r.period_type = 'month'
        """,
        [month],
    ).fetchall()[0]
    if ranked == 0:
        problems.append(f"{month:%Y-%m}: 无排名数据 (no department ranked)")
    if out_of_range:
        problems.append(f"{month:%Y-%m}: {out_of_range} 个综合得分超出该口径版本的分制 (outside the version's scale)")
    unranked = con.execute(
        """
        select list(distinct v.department_id order by v.department_id)
        from marts.fct_indicator_values as v
        left join marts.fct_rankings as r
            on r.period = v.period and r.period_type = v.period_type and r.department_id = v.department_id
        where v.period = ? and v.period_type = 'month' and v.score is not null and r.department_id is null
        """,
        [month],
    ).fetchall()[0][0]
    if unranked:
        problems.append(f"{month:%Y-%m}: 有得分但未排名的部门 {unranked}")
    return problems


@dg.multi_asset_check(
    specs=[
        monthly_check_spec(
            "publishable",
            asset=RANKINGS_KEY,
            blocking=True,
            description="The month's marts are complete and in range, and no blocking check failed for it.",
        )
    ],
    name="publishable",
)
def publishable(context: dg.AssetCheckExecutionContext) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    s = settings()
    results = MonthlyCheckResults(context)  # one result per month: pipelines/checks/per_month.py says why
    yield results.output(RANKINGS_KEY, "publishable")
    months = months_of(context)
    with read_warehouse() as con:
        for month in months:
            month_problems = publication_problems(con, month)
            stored = [
                failure
                for feeding in gate.months_feeding([month])
                for failure in gate.blocking_failures(s.lake, feeding, ignore_sources=gate.PROCESS_SOURCES)
            ] + [f for f in gate.blocking_failures(s.lake, month) if f.source == "scoring"]
            month_problems += [f"{f.period:%Y-%m} {f.source}/{f.check_name}: {f.details}" for f in stored]
            gate.record(
                s.lake,
                "publication",
                month,
                "publishable",
                [
                    CheckOutcome(
                        "publication",
                        month,
                        None,
                        "publishable",
                        "error",
                        not month_problems,
                        "; ".join(month_problems)[:2000] or "ok",
                    )
                ],
            )
            yield results.evaluation(
                RANKINGS_KEY,
                "publishable",
                month,
                passed=not month_problems,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{month:%Y-%m}: {len(month_problems)} problem(s)"
                if month_problems
                else f"{month:%Y-%m}: publishable",
                metadata=(_recorded_and_signed(s) if month == months[-1] else {})
                | {"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in month_problems[:50]) or "none")},
            )


def _recorded_and_signed(s) -> dict:
    """The publication checks written, in the ledger's record of the lake; then a signed head."""
    events.record_lake_files(s.home, [gate.check_results_dir(s.lake) / "publication"])
    return events.checkpoint_metadata(s.home)


@dg.asset(
    key=dg.AssetKey(["publish", "bulletins"]),
    deps=MART_KEYS,
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="publish",
    kinds={"html"},
    description=(
        "绩效通报 drafts: the monthly edition, and the quarterly edition when the month closes a quarter; "
        "each one folder (bulletins/<monthly|quarterly>/<period>) holding a self-contained HTML file, a page "
        "per department and the ranking and indicator tables as XLSX, swapped in whole. Read from the marts only."
    ),
)
def bulletins(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    s = settings()
    months = months_of(context)
    try:
        gate.assert_open(s.lake, months, "Bulletin", include_process=True)
    except gate.GateClosed as refusal:
        raise dg.Failure(description=str(refusal)) from None
    store = StampStore(s.home)
    editions = editions_of(months)
    drawn_from = stamps.edition_stamps(editions, store.read(DBT_STEP), s.reference_dir)
    # Each edition is written whole into a new version folder and swapped in, under its
    # lock, so a second run of the same months waits instead of mixing its files in.
    drafts = write_drafts(
        s.bulletins,
        editions,
        lock_holder(context.run_id),
        on_wait=context.log.info,
        on_skip=context.log.warning,
        on_write=context.log.info,
    )
    # The appeal window of an edition opens with its first draft (pipelines/appeals/window.py).
    record_first_drafts(s.home, [draft.edition.key for draft, _version in drafts])
    for draft, version in drafts:
        context.log.info(f"edition {draft.edition.key}: {draft.link} -> {version.name} (bulletin, pages, XLSX)")
    store.record(stamps.STEP, {edition.key: drawn_from[edition.key] for edition in editions})
    # Hashed in the version written, not through the link another run may have moved since.
    written = [version / draft.html.name for draft, version in drafts]
    return dg.MaterializeResult(
        metadata={
            "bulletins": dg.MetadataValue.md(
                "\n".join(f"- `{p}` sha256 `{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}`" for p in written)
            ),
            "latest": dg.MetadataValue.path(str(written[-1]) if written else ""),
        }
    )
