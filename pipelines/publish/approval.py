"""An approval (审核签发) as a Dagster run, so the UI shows who signed what.

`govperf approve` launches `approval_job` (pipelines/runner.py launch_approval)
on the same instance as `govperf run`. Its one asset, publish/published_editions,
is partitioned by edition: 2025-07 for a month, 2025-Q3 for a quarter, later
2025 for a year. A dynamic partitions definition holds those keys because one
time-window definition cannot hold months and quarters at once, and an edition
exists only once someone approves it: the key is added as the run is launched.

The asset calls editions.approve(), which stays a plain function. Its
materialization carries the approver, revision, 文号, manifest hash, file count,
folder, the PDF (its pages and the seconds it took) and ledger checkpoint, per
edition. A refusal (a closed gate, unchanged data, no ranking) fails the run with
the reason as the failure's description.
"""

# No `from __future__ import annotations`: Dagster reads the config annotation at definition time.

import datetime as dt

import dagster as dg
from pydantic import Field

from pipelines.audit.verify import VerificationFailed, refuse_unless_verified
from pipelines.checks import gate
from pipelines.publish.assets import MART_KEYS
from pipelines.publish.config import Edition
from pipelines.publish.edition_rows import is_ranked
from pipelines.publish.editions import PublicationRefused, approve
from pipelines.settings import settings
from pipelines.warehouse import read_warehouse

editions = dg.DynamicPartitionsDefinition(name="editions")

PUBLISHED_EDITIONS_KEY = dg.AssetKey(["publish", "published_editions"])
TIME_FORMAT = "%Y-%m-%d %H:%M"
APPROVER_TAG = "govperf/approver"


class ApprovalConfig(dg.Config):
    """What `govperf approve` passes to the run (and the launchpad asks for)."""

    period: str = Field(description="The edition: 2025-07 (a month) or 2025-Q3 (a quarter); the run's partition.")
    approver: str = Field(description="Who approves the edition (recorded and shown).")
    note: str = Field(default="", description="What changed, for a revision of an edition already published.")
    time: str = Field(description="Approval time, YYYY-MM-DD HH:MM, as shown in the edition.")
    with_departments: bool = Field(
        default=False, description="Print the department pages in the PDF too, as an appendix."
    )
    force: bool = Field(
        default=False,
        description="Approve inside the appeal window or with appeals open; the note must say why (recorded).",
    )


def run_config(
    period: str, approver: str, note: str, approved_at: dt.datetime, with_departments: bool = False, force: bool = False
) -> dict:
    config = {
        "period": period,
        "approver": approver,
        "note": note,
        "time": approved_at.strftime(TIME_FORMAT),
        "with_departments": with_departments,
        "force": force,
    }
    return {"ops": {PUBLISHED_EDITIONS_KEY.to_python_identifier(): {"config": config}}}


@dg.asset(
    key=PUBLISHED_EDITIONS_KEY,
    partitions_def=editions,
    # An edition reads its window of the marts, whatever months those are.
    deps=[dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in MART_KEYS],
    group_name="publish",
    kinds={"html"},
    description=(
        "审核签发: the published revisions of an edition (published/<monthly|quarterly>/<key>/r<N>), one "
        "materialization per approval. Its metadata says who approved which revision, the manifest's SHA-256 "
        "and the ledger checkpoint. Launched by `govperf approve`, never by a schedule."
    ),
)
def published_editions(context: dg.AssetExecutionContext, config: ApprovalConfig) -> dg.MaterializeResult:
    s = settings()
    if context.partition_key != config.period:
        raise dg.Failure(description=f"the run's edition {context.partition_key} is not the period {config.period}")
    try:
        edition = Edition.parse(config.period)
        when = dt.datetime.strptime(config.time, TIME_FORMAT)
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    if when > dt.datetime.now() + dt.timedelta(minutes=1):
        # an approval recorded for later would pass the appeal window before it closes
        raise dg.Failure(description=f"{config.time} is in the future: an approval is recorded when it is given")
    import duckdb

    try:
        gate.assert_open(s.lake, edition.trend_months(edition.months), "Approval", include_process=True)
        refuse_unless_verified(s)  # nothing is approved from a home whose evidence fails its ledger
        if edition.period_type == "year":
            _refuse_unless_the_year_is_scored(s, edition)
        with read_warehouse() as con:
            appeals = _appeal_record(s, con, edition, when) if is_ranked(con, edition) else None
            overridden = appeals["forced_over"] if appeals else []
            if overridden and not config.force:
                raise PublicationRefused(
                    f"{edition.key}: " + "; ".join(overridden) + " (or approve with --force and a --note saying why)"
                )
            if overridden and not config.note.strip():
                raise PublicationRefused(f"{edition.key}: --force needs a --note saying why it is approved anyway")
            published = approve(
                con,
                edition,
                s.published,
                config.approver,
                when,
                config.note,
                run_id=context.run_id,
                with_departments=config.with_departments,
                appeals=appeals,
            )
    except (gate.GateClosed, PublicationRefused, VerificationFailed) as refusal:
        raise dg.Failure(description=str(refusal)) from None
    except duckdb.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise dg.Failure(
            description=f"the warehouse {s.duckdb_path} cannot be read for {config.period} ({first_line}): "
            "run `govperf run` for the month again"
        ) from None
    context.log.info(f"{edition.key}: revision {published.revision} published to {published.folder}")
    frozen = _freeze_the_year(s, context, edition, published, when) if edition.period_type == "year" else None
    return dg.MaterializeResult(
        metadata={
            "approver": published.approved_by,
            "approved_at": config.time,
            "revision": published.revision,
            "document_number": published.document_number,
            "note": config.note.strip(),
            "manifest_sha256": published.manifest_sha256,
            "files": published.files,
            "folder": dg.MetadataValue.path(str(published.folder)),
            "edition": dg.MetadataValue.path(str(published.html)),
            "pdf": dg.MetadataValue.path(str(published.pdf)),
            "pdf_pages": published.pdf_pages,
            "pdf_seconds": published.pdf_seconds,
            "ledger_checkpoint": dg.MetadataValue.json(published.checkpoint),
            **({"year_frozen": frozen} if frozen else {}),
        }
    )


def _refuse_unless_the_year_is_scored(s, edition: Edition) -> None:
    """An annual approval freezes its year: nothing of the year may wait to be landed or
    scored (a correction landed by the daily ingest after the last scoring), or the
    frozen year's marts would move on the next run."""
    from pipelines.plan import make_plan, months_in_inbox

    # from the year's first month with files, as `govperf run` plans (a year need not start in January)
    months = [m for m in months_in_inbox(s) if m.startswith(f"{edition.period.year}-")]
    first = dt.date.fromisoformat(f"{months[0]}-01") if months else edition.period
    plan = make_plan(s, first, edition.last_month)
    if plan.needed:
        stale = [line for line in plan.describe() if ": redo " in line]
        raise PublicationRefused(
            f"{edition.key}: the year is not scored as it stands, and its approval would freeze it: "
            + "; ".join(stale)
            + f" (run `govperf run --year {edition.period.year}` first)"
        )


def _freeze_the_year(s, context, edition: Edition, published, when: dt.datetime) -> str:
    """封账: an approved annual edition freezes its year (pipelines/year_freeze.py): a late
    file for one of its months is refused until the year is reopened with a reason."""
    from pipelines.year_freeze import describe_freeze, freeze_year

    approval = {
        "edition": edition.key,
        "revision": published.revision,
        "manifest_sha256": published.manifest_sha256,
        "run_id": context.run_id,
    }
    try:
        frozen = freeze_year(s.home, edition.period.year, by=published.approved_by, at=when, approval=approval)
    except (ValueError, OSError) as damaged:  # the edition is out, the year is not frozen: say how to finish
        raise dg.Failure(
            description=f"{edition.key}: revision {published.revision} was published, but the year could not be"
            f" frozen ({damaged}); once that is put right: govperf year freeze {edition.period.year}"
            f" --by {published.approved_by} --edition {edition.key} --revision {published.revision}"
        ) from None
    described = describe_freeze(frozen)
    context.log.info(f"{edition.period.year}: {described}")
    return described


def _appeal_record(s, con, edition: Edition, when: dt.datetime) -> dict:
    """The appeal window and appeals of `edition`, for its manifest, and what they say
    against approving it at `when` (`forced_over`: approved only with --force); `con`
    reads the marts, which must show every decision (pipelines/appeals/window.py)."""
    from pipelines.appeals.store import current_appeals
    from pipelines.appeals.window import approval_refusals, window_of
    from pipelines.publish.config import load_bulletin_config
    from pipelines.publish.mart_rows import has_table, rows

    days = load_bulletin_config(s.reference_dir).appeals.window_working_days
    try:
        window = window_of(s.home, s.reference_dir, edition.key, days)
        about = [a for a in current_appeals(s.home).values() if edition.holds_appeal(a.period_type, a.period)]
    except ValueError as damaged:  # a damaged state file: named, never guessed around
        raise PublicationRefused(f"{edition.key}: {damaged}") from None
    if window is not None and when < window.first_draft:
        raise PublicationRefused(
            f"{edition.key}: {when:{TIME_FORMAT}} is before the edition was first drafted "
            f"({window.first_draft:{TIME_FORMAT}}); nothing can be approved before it exists"
        )
    in_marts = {}
    if about and has_table(con, "fct_appeals"):
        query = "select appeal_id, status, resubmitted_at from marts.fct_appeals"
        in_marts = {r["appeal_id"]: r for r in rows(con, query, {})}
    return {
        "first_draft": window.first_draft.strftime(TIME_FORMAT) if window else None,
        "window_closes": window.closes.isoformat() if window else None,
        "appeals": {a.appeal_id: a.status for a in about},
        "forced_over": approval_refusals(window, edition.key, when, about, in_marts),
    }


approval_job = dg.define_asset_job(
    "approval_job",
    selection=dg.AssetSelection.assets(PUBLISHED_EDITIONS_KEY),
    partitions_def=editions,
    # One short step: a step process would load the code location a second time.
    executor_def=dg.in_process_executor,
    description="审核签发: publish one edition's next revision (what `govperf approve` launches).",
)
