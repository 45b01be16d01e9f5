"""`govperf year`: the year's freeze (封账) after the annual approval, its reopening
with a reason, and its state (pipelines/year_freeze.py)."""

from __future__ import annotations

import datetime as dt

import click

from pipelines.cli_appeals import _time  # the same --at rule: a time, never in the future
from pipelines.settings import settings
from pipelines.text import printable


@click.group()
def year() -> None:
    """The year's freeze (封账): status, reopen, freeze.

    Approving the annual edition freezes its year: from then on a delivery for one
    of its months (a resubmission, or a first delivery) is refused by ingest and
    listed as a warning (year_frozen), the file kept in the inbox and its original
    archived. An analyst reopens the year with a reason, which is recorded; the next
    `govperf run` then lands what was refused.

    \b
    Example:
      govperf year status
      govperf year reopen 2025 --reason "审计整改：D012 更正8月数据" --by 张三
    """


@year.command()
@click.argument("year_number", metavar="YEAR", type=int)
@click.option("--reason", required=True, help="Why the year is reopened (recorded, masked like every free text).")
@click.option("--by", "by", required=True, help="Who reopens it (recorded).")
@click.option("--at", "at", default=None, help="When, YYYY-MM-DD HH:MM [now].")
def reopen(year_number: int, reason: str, by: str, at: str | None) -> None:
    """Reopen a frozen year, with a reason: its months take deliveries again."""
    from pipelines import year_freeze

    try:
        record = year_freeze.reopen_year(settings().home, year_number, by=by, reason=reason, at=_time(at))
    except ValueError as error:
        raise click.ClickException(printable(str(error))) from None
    click.echo(
        printable(
            f"reopened {year_number} by {record['by']} at {record['at']}: {record['reason']}; "
            "`govperf run` lands the files refused while it was frozen; approving the annual edition again freezes it"
        )
    )


@year.command()
@click.argument("year_number", metavar="YEAR", type=int)
@click.option("--by", "by", required=True, help="Who freezes it (recorded).")
@click.option("--edition", required=True, help="The approval it follows: the annual edition's key (e.g. 2025).")
@click.option("--revision", type=int, default=None, help="The approved revision of that edition.")
@click.option("--at", "at", default=None, help="When, YYYY-MM-DD HH:MM [now].")
def freeze(year_number: int, by: str, edition: str, revision: int | None, at: str | None) -> None:
    """Freeze a year by hand (approving an annual edition freezes it by itself)."""
    from pipelines import year_freeze

    when = _time(at) or dt.datetime.now().replace(second=0, microsecond=0)
    approval = {"edition": edition, "revision": revision}
    try:
        record = year_freeze.freeze_year(settings().home, year_number, by=by, at=when, approval=approval)
    except ValueError as error:
        raise click.ClickException(printable(str(error))) from None
    click.echo(printable(f"{year_number}: {year_freeze.describe_freeze(record)}"))


@year.command()
@click.option("--json", "as_json", is_flag=True, help="The same, as JSON, for machines.")
def status(as_json: bool) -> None:
    """The years frozen now (who, when, which approval), and each year's history."""
    import json

    from pipelines import year_freeze

    home = settings().home
    try:
        years = year_freeze.history(home)
    except ValueError as error:
        raise click.ClickException(printable(str(error))) from None
    if as_json:
        state = {
            str(y): {"frozen": events[-1]["event"] == "frozen", "current": events[-1], "events": events}
            for y, events in sorted(years.items())
        }
        click.echo(json.dumps(state, ensure_ascii=False, indent=2))
        return
    if not years:
        click.echo("no year has been frozen")
        return
    for y, events in sorted(years.items()):
        last = events[-1]
        now = year_freeze.describe_freeze(last) if last["event"] == "frozen" else f"open (reopened at {last['at']})"
        click.echo(printable(f"{y}: {now}"))
        for e in events:
            what = year_freeze.describe_freeze(e) if e["event"] == "frozen" else f"reopened at {e['at']} by {e['by']}"
            click.echo(printable(f"    #{e['n']} {what}" + (f": {e['reason']}" if e.get("reason") else "")))
