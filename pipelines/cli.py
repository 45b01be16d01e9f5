"""`govperf`: the command line for analysts and operators."""

from __future__ import annotations

import atexit
import datetime as dt
import gc
import os
import re
import sys
import time
from pathlib import Path

import click

from pipelines.publish import finding_marks  # light: the screens and outcomes a mark names
from pipelines.settings import PROJECT_ROOT, UnknownEngine, engine, settings
from pipelines.text import printable

MONTH = re.compile(r"^\d{4}-\d{2}$")


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not MONTH.match(value):
        raise click.BadParameter(f"{value!r} is not a month like 2025-03")
    return value


class _Progress:
    """Prints a line at most once a second: rows written per source."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, label: str, rows: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            click.echo(f"  {label}: {rows:,} rows", err=True)


class _Commands(click.Group):
    """Answers a home, inbox or configuration in a bad or empty state with one
    sentence and exit status 1, not a traceback (GOVPERF_DEBUG=1 shows it)."""

    def invoke(self, ctx: click.Context):
        from pipelines.reference import ConfigError

        try:
            return super().invoke(ctx)
        except (OSError, ConfigError, _database_error()) as error:
            if os.environ.get("GOVPERF_DEBUG"):
                raise
            raise click.ClickException(printable(_one_sentence(error))) from None


def _database_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def _one_sentence(error: Exception) -> str:
    if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename:
        return f"cannot use {error.filename}: a file stands where govperf needs a folder"
    if isinstance(error, OSError) and error.filename:
        return f"cannot use {error.filename}: {error.strerror or error}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return first_line


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """govperf: government performance management warehouse (政府绩效管理数据平台).

    \b
    Example:
      govperf run                # generate the sample if needed, run extract → bulletin
      govperf ui --read-only     # the auditors' view of runs, lineage and checks

    \b
    Paths come from the environment (defaults in brackets):
      GOVPERF_HOME    everything a run writes            [./var]
      GOVPERF_DUCKDB  the warehouse file                 [$GOVPERF_HOME/warehouse/govperf.duckdb]
      GOVPERF_INBOX   where departments' extracts arrive [./sources/sample]
      GOVPERF_CONFIG  mappings/ and reference/           [./sources]
      DAGSTER_HOME    Dagster run history                [$GOVPERF_HOME/dagster_home]
      GOVPERF_ENGINE  what dbt builds on: duckdb or spark [duckdb] (docs/scale.md)
    """
    # Registered first, so it runs after every other exit handler: the interpreter's
    # last collections would otherwise walk every object Dagster, dbt's manifest and
    # the checks left (0.8-1.4 s at the end of each run, measured); frozen objects
    # are still freed, only no longer searched for cycles.
    atexit.register(gc.freeze)
    try:
        os.environ["GOVPERF_ENGINE"] = engine()  # as dbt's profile names its target: "Spark " is "spark"
    except UnknownEngine as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Target folder [GOVPERF_INBOX].")
@click.option("--seed", type=int, default=20250101, show_default=True)
@click.option("--first-month", default="2025-01", show_default=True, callback=_month)
@click.option("--last-month", default="2026-03", show_default=True, callback=_month)
@click.option("--transactions", type=int, default=None, help="Total service transactions [60,000; a province 50 M].")
@click.option("--province", is_flag=True, help="A province: many units over one year, with its own configuration.")
@click.option("--units", type=int, default=None, help="The province's units [5,000].")
@click.option("--year", type=int, default=2025, show_default=True, help="The province's year.")
def sample(
    out: Path | None,
    seed: int,
    first_month: str,
    last_month: str,
    transactions: int | None,
    province: bool,
    units: int | None,
    year: int,
) -> None:
    """Generate the sample city's extracts (deterministic for a seed), or a province.

    \b
    Example:
      govperf sample                       # the small default sample
      govperf sample --out /data/bench --transactions 10000000
      govperf sample --province --out /data/province    # 5,000 units, 50 M transactions, 2025
    """
    started = time.monotonic()
    if province:
        summary, layout = _province(out, seed, transactions, units, year)
        target = layout.inbox
    else:
        if units is not None:
            raise click.UsageError("--units is for a province (--province)")
        from pipelines.sample.generator import generate_city

        target = out or settings().inbox
        summary = generate_city(
            target,
            departments_yaml=settings().reference_dir / "departments.yaml",
            seed=seed,
            first_month=first_month,
            last_month=last_month,
            transactions=transactions,
            progress=_Progress(),
        )
    click.echo(
        f"wrote {len(summary.files)} files for {summary.departments} departments to {target} "
        f"in {time.monotonic() - started:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
    )
    if province:
        click.echo(f"run it with: GOVPERF_CONFIG={layout.config} GOVPERF_INBOX={layout.inbox} govperf run")


def _province(out: Path | None, seed: int, transactions: int | None, units: int | None, year: int):
    from pipelines.sample.province import PROVINCE_TRANSACTIONS, PROVINCE_UNITS, ProvinceLayout, write_province

    if out is None:
        raise click.UsageError("a province needs --out: a folder with room for its extracts")
    summary = write_province(
        out,
        config_from=settings().config_dir,
        units=units or PROVINCE_UNITS,
        transactions=transactions or PROVINCE_TRANSACTIONS,
        year=year,
        seed=seed,
        progress=_Progress(),
    )
    return summary, ProvinceLayout(out)


def _months_in_inbox() -> list[str]:
    from pipelines.plan import months_in_inbox

    return months_in_inbox(settings())


@main.command()
@click.option("--from", "first", default=None, callback=_month, help="First month [earliest in the inbox].")
@click.option("--to", "last", default=None, callback=_month, help="Last month [latest in the inbox].")
@click.option(
    "--year", type=click.IntRange(2000, 2999), default=None, help="A whole year: --from YYYY-01 --to YYYY-12."
)
@click.option(
    "--job",
    type=click.Choice(["full", "ingest", "scoring"]),
    default="full",
    show_default=True,
    help="full: extract to bulletin; ingest: land and check only; scoring: dbt and bulletin only.",
)
@click.option("--multiprocess", is_flag=True, help="Run steps in parallel processes.")
@click.option("--dry-run", is_flag=True, help="Say what would be redone, and why; run nothing.")
@click.option("--force", is_flag=True, help="Redo every step for every month of the range, up to date or not.")
def run(
    first: str | None, last: str | None, year: int | None, job: str, multiprocess: bool, dry_run: bool, force: bool
) -> None:
    """Materialize the Dagster graph for a range of months, through Dagster.

    The run is recorded in DAGSTER_HOME and shows in the UI like any other.
    If the inbox is the bundled sample folder and is empty, the sample is
    generated first.

    The full job redoes only what is out of date: the months whose files,
    configuration or code changed since they were last done, and every later
    month that reads them; only the editions whose inputs changed are drawn
    again. Nothing out of date: no run, and each step says why. --force redoes
    the whole range; --job ingest|scoring runs that job over the range as asked.

    \b
    Example:
      govperf run                          # every month in the inbox, what is out of date
      govperf run --dry-run                # what would be redone, and why
      govperf run --from 2025-03 --to 2025-03 --job scoring
      govperf run --year 2025              # the year, its annual edition (年度绩效考核) included
    """
    if year is not None:
        if first or last:
            raise click.UsageError("--year is a whole year: give it without --from and --to")
        first, last = f"{year}-01", f"{year}-12"
    s = settings()
    parsing = None
    if not dry_run:  # the dbt parse Dagster's definitions need, overlapping what comes before them
        from pipelines.transform.parse import parse_in_background

        parsing = parse_in_background()
    if not any(s.inbox.rglob("*.*")) and s.inbox == PROJECT_ROOT / "sources" / "sample":
        if dry_run:
            raise click.ClickException(f"no extracts in {s.inbox}; `govperf run` would generate the sample city")
        click.echo(f"no extracts in {s.inbox}; generating the sample city first", err=True)
        click.get_current_context().invoke(sample)
    months = _months_in_inbox()
    from_asked = first is not None
    if not months and not first:
        raise click.ClickException(f"no extracts matching any mapping in {s.inbox}")
    first = first or months[0]
    last = last or (months[-1] if months else first)
    if last < first:
        raise click.ClickException(f"--to {last} is before --from {first}")

    selection, skip_sources = job, []
    asked = (first, last)
    if job == "full" and not force:
        from pipelines.plan import make_plan

        plan = make_plan(s, dt.date.fromisoformat(f"{first}-01"), dt.date.fromisoformat(f"{last}-01"))
        for line in plan.describe():
            click.echo(line, err=True)
        window = plan.window()
        if window is None:
            click.echo(f"nothing to do for {first}..{last}: every step is up to date")
            _say_where(s, first, last)
            if parsing is not None:
                parsing.join()  # not left half done
            return
        first, last = window
        selection = plan.job()
        skip_sources = plan.up_to_date_sources() if selection == "full" else []
    if dry_run:
        click.echo(f"would run the {selection} job for {first}..{last}")
        return

    from pipelines.instance import BrokenInstance
    from pipelines.runner import failure_messages, launch

    ran: list[str] = []  # the months the runs covered
    for attempt in range(2):
        click.echo(f"running the {selection} job for {first}..{last} (Dagster home: {s.dagster_home})", err=True)
        started = time.monotonic()
        try:
            result = launch(
                first,
                last,
                job=selection,
                multiprocess=multiprocess,
                skip_sources=skip_sources,
                exits_after=True,  # this process ends after its runs (at most two)
            )
        except BrokenInstance as error:
            raise click.ClickException(str(error)) from None
        elapsed = time.monotonic() - started
        if not result.success:
            click.echo(f"run {result.run_id} failed after {elapsed:.0f} s:", err=True)
            for message in failure_messages(result):
                click.echo(f"  - {message}", err=True)
            sys.exit(1)
        click.echo(f"run {result.run_id} succeeded in {elapsed:.0f} s")
        ran += [first, last]
        if attempt == 1 or job != "full" or force:
            break
        # Files just landed may carry rows dated in months before those this run
        # scored (pipelines/transform/stamps.py, later_files): only now is that known.
        from pipelines.plan import make_plan

        if not from_asked:  # from the earliest month of what is now landed
            asked = (min(asked[0], _months_in_inbox()[0]), asked[1])
        after = make_plan(s, *(dt.date.fromisoformat(f"{month}-01") for month in asked))
        if after.window() is None or after.window()[0] >= first:
            break  # nothing earlier to score (work left by runs going on beside it is theirs)
        for line in after.describe():
            click.echo(line, err=True)
        (first, last), selection = after.window(), after.job()
        skip_sources = after.up_to_date_sources() if selection == "full" else []
        click.echo(
            f"still out of date after that run (rows it landed may be dated in earlier months): "
            f"running the {selection} job for {first}..{last} too",
            err=True,
        )
    first, last = min(ran), max(ran)
    if selection != "ingest":
        _say_where(s, first, last)
    else:
        click.echo(f"warehouse: {s.duckdb_path}")


def _say_where(s, first: str, last: str) -> None:
    from pipelines.publish.config import PERIOD_FOLDERS, editions_of

    click.echo(f"warehouse: {s.duckdb_path}")
    months = [dt.date.fromisoformat(f"{month}-01") for month in _month_range(first, last)]
    found = [(e, s.bulletins / PERIOD_FOLDERS[e.period_type] / e.key / f"{e.stem}.html") for e in editions_of(months)]
    found = [(e, p) for e, p in found if p.exists()]
    paths = [p for _e, p in found]
    kinds = list(dict.fromkeys(PERIOD_FOLDERS[e.period_type] for e, _p in found)) or ["none"]
    kinds = " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
    click.echo(
        f"bulletins: {s.bulletins} ({len(paths)} editions in {first}..{last}, {kinds}; "
        "each a folder with its department pages and XLSX)"
    )
    if paths:
        click.echo(f"latest bulletin: {paths[-1]}")


def _month_range(first: str, last: str) -> list[str]:
    months, current = [], dt.date.fromisoformat(f"{first}-01")
    end = dt.date.fromisoformat(f"{last}-01")
    while current <= end:
        months.append(f"{current:%Y-%m}")
        current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


@main.command()
@click.option("--read-only", is_flag=True, help="The auditors' UI: browse everything, launch nothing.")
@click.option("--port", type=int, default=3000, show_default=True)
def ui(read_only: bool, port: int) -> None:
    """Open the Dagster UI on this project (history kept in DAGSTER_HOME).

    \b
    Example:
      govperf ui                 # analysts: dagster dev, with schedules and sensors
      govperf ui --read-only     # auditors: dagster-webserver --read-only
    """
    from pipelines.instance import BrokenInstance
    from pipelines.reference import ConfigError
    from pipelines.runner import instance

    try:
        instance()  # makes DAGSTER_HOME, its dagster.yaml (the run queue's limits) and its storage, once
    except (BrokenInstance, ConfigError) as error:
        raise click.ClickException(str(error)) from None
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    bin_dir = Path(sys.executable).parent
    if read_only:
        command = [str(bin_dir / "dagster-webserver"), "-w", workspace, "--read-only", "-p", str(port)]
    else:
        command = [str(bin_dir / "dagster"), "dev", "-w", workspace, "-p", str(port)]
    # Not exec'd: govperf stays as the parent, so that a stop (SIGTERM, SIGINT,
    # SIGHUP) ends the webserver, the daemon, the code servers and their runs.
    from pipelines.process_tree import run_whole

    sys.exit(run_whole(command, cwd=PROJECT_ROOT))


@main.command()
@click.option(
    "--period", "period", required=True, help="The edition: a month (2025-07), a quarter (2025-Q3) or a year (2025)."
)
@click.option("--by", "approved_by", required=True, help="Who approves the edition (recorded and shown).")
@click.option("--note", default="", help="What changed, for a revision of an edition already published.")
@click.option("--at", "approved_at", default=None, help="Approval time, YYYY-MM-DD HH:MM [now].")
@click.option(
    "--with-departments", is_flag=True, help="Print the department pages in the edition's PDF too, as an appendix."
)
@click.option(
    "--force",
    is_flag=True,
    help="Approve inside the appeal window, or with appeals undecided or awaiting resubmission; --note says why.",
)
def approve(
    period: str, approved_by: str, note: str, approved_at: str | None, with_departments: bool, force: bool
) -> None:
    """Approve a monthly, quarterly or annual bulletin (审核签发) and publish it to the archive.

    The approval is a Dagster run (approval_job, asset publish/published_editions,
    one partition per edition), recorded in DAGSTER_HOME like `govperf run`'s: the
    UI shows who approved which revision. Its run id is printed, and written into
    the revision's manifest and footer.

    The revision holds the edition's HTML, its department pages and the edition as
    an A4 PDF (bulletin_<period>.pdf; --with-departments adds the department pages
    as its appendix), all hashed in manifest.json. Its 文号 (e.g. 绩效办〔2026〕3号)
    is the next of the approval's year; a revision keeps its edition's number.

    Refused if a blocking check failed for any of its months, inside the edition's
    appeal window (bulletin.yaml appeals), or with an appeal about it undecided, not
    yet scored, or upheld about a figure not yet resubmitted (govperf appeal), unless
    --force is given with a --note saying why (recorded). A published edition is
    never rewritten: approving again after the data changed publishes a new
    revision (say what changed with --note); with no change it is refused.

    \b
    Example:
      govperf approve --period 2025-07 --by 张三
      govperf approve --period 2025-07 --by 张三 --note "市场监管局重报7月数据"
      govperf approve --period 2025-Q3 --by 张三 --with-departments
      govperf approve --period 2025-08 --by 张三 --force --note "市政府常务会议要求提前通报"
    """
    from pipelines.publish.config import Edition

    s = settings()
    try:
        edition = Edition.parse(period)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    try:
        when = dt.datetime.strptime(approved_at, "%Y-%m-%d %H:%M") if approved_at else dt.datetime.now()
    except ValueError:
        raise click.BadParameter(f"{approved_at!r} is not a time like 2025-08-10 09:30", param_hint="--at") from None
    if force and not note.strip():
        raise click.UsageError("--force needs a --note saying why the edition is approved anyway")
    if not s.duckdb_path.is_file():
        raise click.ClickException(
            f"no warehouse at {s.duckdb_path}: run `govperf run` for {period} before approving its edition"
        )

    from pipelines.instance import BrokenInstance
    from pipelines.runner import launch_approval, refusal_reason

    try:
        result = launch_approval(
            edition.key,
            approved_by,
            note,
            when.replace(second=0, microsecond=0),
            with_departments=with_departments,
            force=force,
        )
    except BrokenInstance as error:
        raise click.ClickException(str(error)) from None
    if not result.success:
        # The refusal is the one line on stderr; the run that refused is on stdout.
        click.echo(f"approval run {result.run_id} refused {edition.key}")
        raise click.ClickException(refusal_reason(result))
    materialization = result.asset_materializations_for_node("publish__published_editions")[0]
    metadata = materialization.metadata
    click.echo(f"published: {metadata['edition'].value}")
    click.echo(f"PDF: {metadata['pdf'].value} ({metadata['pdf_pages'].value} pages, {metadata['pdf_seconds'].value} s)")
    click.echo(f"approval run: {result.run_id} (revision {metadata['revision'].value})")
    click.echo(f"document number (文号): {metadata['document_number'].value}")
    if "year_frozen" in metadata:  # 封账: late files for the year's months are refused until it is reopened
        click.echo(f"year {edition.period.year} {metadata['year_frozen'].value}; reopen: govperf year reopen")
    click.echo(f"archive index: {s.published / 'index.html'}")


@main.command()
@click.option(
    "--period", default=None, help="Only the evidence of one month (2025-07), quarter (2025-Q3) or year (2025)."
)
@click.option("--json", "as_json", is_flag=True, help="The same findings as JSON, for machines.")
@click.option(
    "--proof",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Check one forwarded revision's proof.json offline (and its files, when beside it).",
)
def verify(period: str | None, as_json: bool, proof: Path | None) -> None:
    """Recompute the evidence and compare it with the ledger (存证核验).

    Checks the archived originals, the lake, the marts, every published revision,
    and the ledger's chain, roots and signatures against the tree heads pinned in
    published editions and Dagster's event log. Exits 1 on any mismatch.

    \b
    Example:
      govperf verify
      govperf verify --period 2025-07 --json
      govperf verify --proof var/bulletins/published/monthly/2025-07/r1/proof.json
    """
    import json

    from pipelines.audit.verify import render_report, verify_home, verify_proof_path
    from pipelines.publish.config import Edition

    if period is not None:
        try:
            Edition.parse(period)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--period") from None
    report = verify_proof_path(proof) if proof else verify_home(settings(), period)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(report))
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Target folder [$GOVPERF_HOME/docs].")
def docs(out: Path | None) -> None:
    """Write dbt's documentation site (models, columns, tests, lineage) as one
    HTML file that opens offline, from the warehouse as built.

    \b
    Example:
      govperf docs               # then open var/docs/index.html in any browser
    """
    from pipelines.transform.docs import DocsError, generate_docs

    try:
        index = generate_docs(out)
    except (DocsError, OSError, TimeoutError) as error:
        raise click.ClickException(_one_sentence(error)) from None
    click.echo(f"dbt docs: {index}")


@main.command("check-config")
@click.option(
    "--file",
    "one_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Preview how this file would land (layout, header row, delimiter, encoding, first rows, "
    "rows to quarantine), without landing it.",
)
@click.option("--source", default=None, help="The source whose mapping reads --file [by its file_pattern].")
def check_config(one_file: Path | None, source: str | None) -> None:
    """Validate every mapping, reference and quality file, and say what is wrong.

    \b
    Example:
      govperf check-config
      govperf check-config --file ~/下载/好差评明细_202603.xls
    """
    from pipelines.checks.suites import load_suites
    from pipelines.ingest.mapping import load_mappings
    from pipelines.publish.config import load_bulletin_config
    from pipelines.reference import ConfigError, reference_tables
    from pipelines.run_queue import load_config as load_run_queue
    from pipelines.settings import QUALITY_DIR

    s = settings()
    try:
        tables = reference_tables(s.reference_dir)
        load_bulletin_config(s.reference_dir, check_catalogue=True)
        load_run_queue()
        mappings = load_mappings(s.mappings_dir)
        suites = load_suites(QUALITY_DIR)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if one_file is not None:
        _preview(one_file, mappings, source)
        return
    checked, problems = _check_inbox_headers(mappings, s.inbox)
    if problems:
        raise click.ClickException(
            f"{len(problems)} of {checked} inbox file(s) in {s.inbox} do not fit their mapping:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
    click.echo(
        f"ok: {len(tables['departments'])} departments, "
        f"{len(tables['catalogue_versions'])} catalogue version(s), "
        f"{len(mappings)} source mappings, {len(suites)} quality suites, "
        f"{checked} inbox file(s) with their mapped sheet and headers"
    )


def _preview(path: Path, mappings: dict, source: str | None) -> None:
    from pipelines.ingest.preview import describe, preview_file, source_of
    from pipelines.ingest.readers import ExtractError
    from pipelines.reference import load_departments

    s = settings()
    try:
        chosen = source_of(path, mappings, s.inbox, source)
        preview = preview_file(path, mappings[chosen], load_departments(s.reference_dir))
    except ExtractError as error:
        raise click.ClickException(printable(str(error))) from None
    click.echo("\n".join(printable(line) for line in describe(preview).splitlines()))


def _check_inbox_headers(mappings: dict, inbox: Path) -> tuple[int, list[str]]:
    """Find each mapping's sheet and headers in every inbox file it matches, the
    way ingest reads them (through the layout that would read it); returns the
    files checked and what is wrong."""
    from pipelines.ingest.layouts import choose_layout
    from pipelines.ingest.readers import ExtractError, check_header
    from pipelines.ingest.sniff import sniff

    checked, problems = 0, []
    for source, mapping in mappings.items():
        for path in sorted(p for p in inbox.glob(mapping.file_pattern) if p.is_file()):
            checked += 1
            try:
                _layout, layout_mapping = choose_layout(path, sniff(path), mapping, path.name)
                check_header(path, layout_mapping)
            except ExtractError as error:
                where = printable(path.relative_to(inbox).as_posix())
                problems.append(f"mapping {source!r}, file {where}: {printable(error)}")
    return checked, problems


@main.command()
@click.option("--period", required=True, help="A month (2026-03) or a quarter (2026-Q1).")
@click.option("--department", "department_id", required=True, help="Department code, e.g. D059.")
@click.option("--indicator", "indicator_id", default=None, help="One indicator [all of the department's].")
@click.option(
    "--rows",
    "rows_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the contributing rows (masked, as in the warehouse) to this CSV.",
)
@click.option("--json", "as_json", is_flag=True, help="The same derivation as JSON, for machines.")
def explain(period: str, department_id: str, indicator_id: str | None, rows_csv: Path | None, as_json: bool) -> None:
    """Explain a department's rank, scores and indicator values down to source lines (审计溯源).

    \b
    Example:
      govperf explain --period 2026-03 --department D059
      govperf explain --period 2026-Q1 --department D059 --indicator good_review_rate --rows rows.csv
    """
    import json

    from pipelines.publish import explain as explaining
    from pipelines.publish.config import Edition
    from pipelines.publish.explain_text import render
    from pipelines.warehouse import read_warehouse

    s = settings()
    try:
        edition = Edition.parse(period)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    if not s.duckdb_path.is_file():
        raise click.ClickException(f"no warehouse at {s.duckdb_path}: run `govperf run` for {period} first")
    with read_warehouse() as con:
        try:
            explanation = explaining.explain(con, edition, department_id, s.home, indicator_id)
        except explaining.ExplainError as error:
            raise click.ClickException(str(error)) from None
        written = explaining.write_rows(con, explanation, rows_csv) if rows_csv else None
    if as_json:
        click.echo(json.dumps(explaining.as_json(explanation), ensure_ascii=False, indent=2))
    else:
        click.echo(render(explanation), nl=False)
    if rows_csv:
        click.echo(f"rows: {written} written to {rows_csv}", err=True)


@main.command()
@click.option("--period", required=True, help="The finding's period: a month (2025-07) or a quarter (2025-Q3).")
@click.option("--department", "department_id", required=True, help="Department code, e.g. D011.")
@click.option(
    "--screen",
    required=True,
    type=click.Choice(finding_marks.SCREENS),
    help="The screen that flagged it (marts.fct_anomalies.screen).",
)
@click.option("--outcome", required=True, type=click.Choice(finding_marks.OUTCOMES), help="What checking found.")
@click.option("--by", "checked_by", required=True, help="Who checked it (recorded and shown).")
@click.option("--note", default="", help="What was found, briefly.")
def mark(period: str, department_id: str, screen: str, outcome: str, checked_by: str, note: str) -> None:
    """Mark a point to look into (疑点) as checked: 已核实 (confirmed) or 已排除 (ruled out).

    The mark is kept in GOVPERF_HOME/state/finding_marks.jsonl, whatever reruns do to
    the marts; the latest mark of a finding is shown beside it in the edition's annex
    (and in the edition, where bulletin.yaml shows the flags there), and the editions
    of that period are drawn again on the next run.

    \b
    Example:
      govperf mark --period 2025-Q3 --department D011 --screen rating_uniformity --outcome 已排除 --by 张三 --note "窗口核实为正常评价"
    """
    from pipelines.publish.config import Edition

    try:
        edition = Edition.parse(period)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    s = settings()
    if s.duckdb_path.is_file():
        from pipelines.publish.mart_rows import has_table, rows
        from pipelines.warehouse import read_warehouse

        with read_warehouse() as con:
            found = has_table(con, "fct_anomalies") and rows(
                con,
                "select flagged from marts.fct_anomalies where screen = $screen and period = $period"
                " and period_type = $period_type and department_id = $department_id",
                {"screen": screen, "period": edition.period, "period_type": edition.period_type}
                | {"department_id": department_id},
            )
        if not found:
            raise click.ClickException(
                f"{screen} did not test {department_id} in {period} (marts.fct_anomalies): nothing to mark"
            )
    try:
        recorded = finding_marks.add_mark(
            screen, edition.period_type, edition.period, department_id, outcome, checked_by, note
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"marked {screen} {department_id} {period}: {recorded['outcome']} by {recorded['by']} ({recorded['at']})"
    )


from pipelines.cli_appeals import appeal  # noqa: E402  (its commands hang on `main`)

main.add_command(appeal)

from pipelines.cli_year import year  # noqa: E402  (govperf year: the year's freeze, 封账)

main.add_command(year)

if __name__ == "__main__":
    main()
