"""`govperf appeal`: appeals (申诉复核) against a draft edition, and their decisions
(pipelines/appeals)."""

from __future__ import annotations

import datetime as dt

import click

from pipelines.settings import settings
from pipelines.text import printable

TIME_HELP = "YYYY-MM-DD HH:MM [now]"


def _edition(period: str):
    from pipelines.publish.config import Edition

    try:
        return Edition.parse(period)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None


def _time(value: str | None) -> dt.datetime | None:
    """An --at time, which is never in the future: a filing or decision dated ahead
    would pass the appeal window before it closes."""
    if value is None:
        return None
    try:
        at = dt.datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time like 2026-04-13 09:30", param_hint="--at") from None
    if at > dt.datetime.now() + dt.timedelta(minutes=1):
        raise click.BadParameter(f"{value} is in the future", param_hint="--at")
    return at


def _window(edition):
    from pipelines.appeals.window import window_of
    from pipelines.publish.config import load_bulletin_config

    s = settings()
    days = load_bulletin_config(s.reference_dir).appeals.window_working_days
    return window_of(s.home, s.reference_dir, edition.key, days)


@click.group()
def appeal() -> None:
    """Appeals (申诉复核) against a draft edition: file, decide, list.

    A department may appeal a bad review (--case) or a figure (--indicator) of a
    draft edition within bulletin.yaml's appeals.window_working_days working days
    of its first draft. An upheld appeal about a case takes that bad review out of
    the evaluation indicators; one about a figure needs the department's corrected
    resubmission. The next `govperf run` scores the period again, and the edition
    lists every appeal and its outcome. `govperf approve` waits for the window to
    close and every appeal to be settled (or --force with a --note).

    \b
    Example:
      govperf appeal file --period 2026-03 --department D012 --case HC2026030001 --reason "系重复评价" --evidence "系统日志截图"
      govperf appeal decide A0001 --upheld --by 李四 --note "核实为同一办事人重复评价"
      govperf appeal list --period 2026-03
    """


@appeal.command("file")
@click.option(
    "--period",
    required=True,
    help="The draft edition appealed: a month (2026-03), a quarter (2026-Q1) or a year (2025).",
)
@click.option("--department", "department_id", required=True, help="The appealing department's code, e.g. D012.")
@click.option("--indicator", "indicator_id", default=None, help="The figure appealed: an indicator id.")
@click.option("--case", "case_id", default=None, help="The bad review appealed: its case number.")
@click.option("--reason", required=True, help="Why the department appeals (masked like every free text).")
@click.option("--evidence", default="", help="What supports it: documents, records (masked).")
@click.option("--by", "filed_by", default=None, help="Who files it [the department].")
@click.option("--at", "filed_at", default=None, help=f"When it was filed, {TIME_HELP}.")
def file_appeal(
    period: str,
    department_id: str,
    indicator_id: str | None,
    case_id: str | None,
    reason: str,
    evidence: str,
    filed_by: str | None,
    filed_at: str | None,
) -> None:
    """File an appeal against a draft edition (申诉), within its appeal window."""
    from pipelines.appeals import store
    from pipelines.reference import load_catalogue, load_departments, walk

    s = settings()
    edition = _edition(period)
    at = _time(filed_at) or dt.datetime.now().replace(second=0, microsecond=0)
    if (indicator_id is None) == (case_id is None):
        raise click.UsageError("give --indicator (a figure) or --case (a bad review): one of them")
    department = next((d for d in load_departments(s.reference_dir).departments if d.id == department_id), None)
    if department is None:
        raise click.BadParameter(f"{department_id!r} is not in departments.yaml", param_hint="--department")
    if indicator_id is not None:
        known = {
            node.indicator
            for version in load_catalogue(s.reference_dir).versions
            for node, _parent, _level in walk(version.tree)
            if hasattr(node, "indicator")
        }
        if indicator_id not in known:
            raise click.BadParameter(
                f"{indicator_id!r} is not an indicator of the catalogue ({', '.join(sorted(known))})",
                param_hint="--indicator",
            )
    if case_id is not None and edition.period_type != "month":
        raise click.BadParameter(
            "a case counts in the month it was completed: appeal it against that month's edition", param_hint="--period"
        )
    if not (
        department.valid_from <= edition.last_month
        and (department.valid_to is None or department.valid_to >= edition.period)
    ):
        raise click.BadParameter(
            f"{department_id} ({department.name}) did not exist in {edition.key} "
            f"({department.valid_from} to {department.valid_to or 'now'})",
            param_hint="--department",
        )
    if any((s.published / edition.folder / edition.key).glob("r*/manifest.json")):
        raise click.ClickException(f"{edition.key} is published already: appeals are against a draft, before approval")
    try:
        window = _window(edition)
    except ValueError as damaged:
        raise click.ClickException(printable(str(damaged))) from None
    if window is None:
        raise click.ClickException(f"{edition.key} has not been drafted yet: appeals are against a draft edition")
    if at.date() > window.closes:
        raise click.ClickException(f"too late: {window.describe()}")
    if at < window.first_draft:
        raise click.ClickException(
            f"{at:%Y-%m-%d %H:%M} is before {edition.key} was first drafted ({window.first_draft:%Y-%m-%d %H:%M})"
        )
    if case_id is not None:
        _check_case(edition, department_id, case_id)
    try:
        filed = store.file_appeal(
            s.home,
            period_key=edition.key,
            period_type=edition.period_type,
            period=edition.period,
            department_id=department_id,
            indicator_id=indicator_id,
            case_id=case_id,
            reason=reason,
            evidence=evidence,
            filed_by=filed_by if filed_by is not None else department.name,
            at=at,
        )
    except (store.AppealRefused, ValueError) as error:
        raise click.ClickException(printable(str(error))) from None
    click.echo(
        f"filed appeal {filed.appeal_id}: {department.name} ({department_id}) against {edition.key}, "
        f"{'case ' + case_id if case_id else 'indicator ' + str(indicator_id)}; "
        f"decide it with `govperf appeal decide {filed.appeal_id} --upheld|--rejected --by NAME --note ...`; "
        f"appeals close at the end of {window.closes}"
    )


def _check_case(edition, department_id: str, case_id: str) -> None:
    """The case must be a bad review (1-2) of the department, completed in the edition's months."""
    from pipelines.publish.mart_rows import rows
    from pipelines.warehouse import read_warehouse

    s = settings()
    if not s.duckdb_path.is_file():
        raise click.ClickException(f"no warehouse at {s.duckdb_path}: run `govperf run` for {edition.key} first")
    with read_warehouse() as con:
        found = rows(
            con,
            "select department_id, rating, completed_month from staging.stg_lake__service_transactions"
            " where case_id = $case_id",
            {"case_id": case_id},
        )
    if not found:
        raise click.BadParameter(f"no case {case_id!r} in the service transactions landed", param_hint="--case")
    mine = [row for row in found if row["department_id"] == department_id]
    if not mine:
        raise click.BadParameter(
            f"case {case_id} belongs to {', '.join(sorted({r['department_id'] for r in found}))}, not {department_id}",
            param_hint="--case",
        )
    case = mine[0]
    if case["rating"] is None or case["rating"] > 2:
        raise click.BadParameter(
            f"case {case_id} is not a bad review (rating {case['rating'] if case['rating'] is not None else 'none'}): "
            "only a rating of 1-2 is appealed",
            param_hint="--case",
        )
    month = case["completed_month"]
    if month is None or not edition.period <= month <= edition.last_month:
        raise click.BadParameter(
            f"case {case_id} counts in {'no period (not completed)' if month is None else f'{month:%Y-%m}'}, "
            f"not in {edition.key}: appeal it against that edition",
            param_hint="--case",
        )


@appeal.command()
@click.argument("appeal_id")
@click.option("--upheld", "outcome", flag_value="upheld", help="The appeal stands (申诉成立).")
@click.option("--rejected", "outcome", flag_value="rejected", help="The appeal fails (申诉不成立).")
@click.option("--by", "decided_by", required=True, help="Who decides (recorded and shown).")
@click.option("--note", required=True, help="The decision's reasons (masked, shown in the edition).")
@click.option("--at", "decided_at", default=None, help=f"When it was decided, {TIME_HELP}.")
def decide(appeal_id: str, outcome: str | None, decided_by: str, note: str, decided_at: str | None) -> None:
    """Decide an appeal (复核): --upheld or --rejected, once."""
    from pipelines.appeals import store

    at = _time(decided_at)
    if outcome is None:
        raise click.UsageError("say --upheld or --rejected")
    if not note.strip():
        raise click.UsageError("--note: the decision's reasons are required")
    try:
        decided = store.decide(settings().home, appeal_id, outcome, decided_by, note, at)
    except (store.AppealRefused, ValueError) as error:
        raise click.ClickException(printable(str(error))) from None
    if decided.status == "rejected":
        effect = "the figures stand"
    elif decided.case_id:
        effect = (
            f"case {decided.case_id}'s bad review no longer counts; `govperf run` scores {decided.period_key} again"
        )
    else:
        effect = (
            f"{decided.department_id} must resubmit corrected data for {decided.period_key}; "
            "`govperf run` lands it and scores the period again, and approval waits for it"
        )
    click.echo(f"decided appeal {decided.appeal_id}: {decided.status_label} by {decided.decided_by}; {effect}")


@appeal.command("list")
@click.option("--period", default=None, help="Only the appeals about this edition (2026-03, 2026-Q1).")
@click.option("--department", "department_id", default=None, help="Only this department's.")
@click.option("--json", "as_json", is_flag=True, help="The same list as JSON, for machines.")
def list_appeals(period: str | None, department_id: str | None, as_json: bool) -> None:
    """List appeals with their status and decision."""
    import dataclasses
    import json

    from pipelines.appeals import store

    s = settings()
    edition = _edition(period) if period else None
    try:
        appeals = list(store.current_appeals(s.home).values())
    except ValueError as error:
        raise click.ClickException(printable(str(error))) from None
    appeals = [
        a
        for a in appeals
        if (edition is None or edition.holds_appeal(a.period_type, a.period))
        and (department_id is None or a.department_id == department_id)
    ]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(a) for a in appeals], ensure_ascii=False, indent=2, default=str))
        return
    if not appeals:
        click.echo("no appeals" + (f" about {edition.key}" if edition else ""))
        return
    for a in appeals:
        subject = f"case {a.case_id}" if a.case_id else f"indicator {a.indicator_id}"
        decided = f" by {a.decided_by} at {a.decided_at:%Y-%m-%d %H:%M}: {a.decision_note}" if a.decided_by else ""
        click.echo(
            printable(
                f"{a.appeal_id}  {a.period_key}  {a.department_id}  {subject}  filed {a.filed_at:%Y-%m-%d %H:%M} "
                f"by {a.filed_by}  {a.status_label}{decided}"
            )
        )
        click.echo(printable(f"    reason: {a.reason}" + (f" (evidence: {a.evidence})" if a.evidence else "")))
