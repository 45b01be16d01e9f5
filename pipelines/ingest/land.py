"""Land one extract file: archive it, read it, clean and validate every row in SQL,
and write the accepted rows and the quarantined rows as Parquet.

Layout under the lake (one file per accepted original, named by its SHA-256):
    lake/<source>/<YYYY-MM>/<sha256>.parquet            accepted rows, canonical columns
    lake/quarantine/<source>/<YYYY-MM>/<sha256>.parquet rows that failed, with line and reason
    lake/file_loads/<source>/<YYYY-MM>/<sha256>.parquet one row: counts, encoding, load time

The cleaning SQL is in cleaning.py. Everything here runs in a private in-memory
DuckDB, never in the warehouse file, so ingest steps can run in parallel
processes without fighting over its lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ingest import keywords, masking
from pipelines.ingest.canonical import DUCKDB_TYPES, CanonicalTable
from pipelines.ingest.cleaning import clean_sql, register_departments, title_constants
from pipelines.ingest.cleaning import sql_literal as _lit
from pipelines.ingest.csv_scan import DELIMITERS
from pipelines.ingest.duplicates import mark_duplicates
from pipelines.ingest.layouts import choose_layout
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.masking import mask_sql
from pipelines.ingest.readers import ExtractError, read_csv
from pipelines.ingest.refused import write_refused_lines
from pipelines.ingest.sniff import mismatch, sniff
from pipelines.ingest.workbook_reader import read_spreadsheet
from pipelines.ledger.events import file_sha256 as sha256_of
from pipelines.parquet import temporary_beside, write_table
from pipelines.reference import DepartmentRegistry
from pipelines.text import printable
from pipelines.warehouse import duckdb_connection

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("period", pa.date32()),
        ("file_name", pa.string()),
        ("file_hash", pa.string()),
        ("line", pa.int64()),
        ("raw_text", pa.string()),
        ("reason", pa.string()),
    ]
)
FILE_LOAD_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("period", pa.date32()),
        ("file_name", pa.string()),
        ("file_hash", pa.string()),
        ("file_format", pa.string()),
        ("layout", pa.string()),
        ("encoding", pa.string()),
        ("header_line", pa.int64()),
        ("rows_read", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("notes_rows", pa.int64()),
        ("first_row_month", pa.date32()),
        ("file_error", pa.string()),
        ("archive_path", pa.string()),
        ("config_fingerprint", pa.string()),
        ("submitted_at", pa.timestamp("us")),
        ("loaded_at", pa.timestamp("us")),
    ]
)

# Bump when landing rules change in a way that should re-land files already landed.
# 4: personal data masked in every text field, ID numbers by check digit, names.
# 6: comment keywords (comment_keywords).
# 7: a field over limits.max_field_bytes, or holding a NUL byte, quarantines its row.
# 8: the file log records the earliest month of the rows (first_row_month); rows
#    carry their own month (_month), the month of their resubmission slice.
LANDING_RULES_VERSION = "8"


@dataclass
class FileLanding:
    source: str
    period: dt.date
    file_name: str
    file_hash: str
    file_format: str
    layout: str | None  # the mapping's layout that read it (pipelines/ingest/layouts.py); None when refused first
    encoding: str | None
    header_line: int | None
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    notes_rows: int
    file_error: str | None
    archive_path: str
    config_fingerprint: str
    # When the department delivered the file: its modification time in the inbox, or
    # the time the same bytes were first delivered (first_delivered_at). Orders
    # resubmissions and decides lateness against the submission deadline.
    submitted_at: dt.datetime
    loaded_at: dt.datetime
    # The earliest month of the accepted rows' own dates (the table's activity date):
    # before `period` when the file carries rows of earlier months (a case received
    # in March, in April's file; a multi-month export). Months from it are rescored.
    first_row_month: dt.date | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_accepted + self.rows_quarantined


def archive_original(path: Path, file_hash: str, archive_dir: Path) -> Path:
    """Keep the original bytes under their hash; a second copy of the same file is a no-op."""
    target = archive_dir / file_hash[:2] / f"{file_hash}{''.join(path.suffixes[-1:]).lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_beside(target)
        shutil.copyfile(path, temporary)
        temporary.replace(target)
    return target


def lake_paths(lake: Path, source: str, period: dt.date, file_hash: str) -> dict[str, Path]:
    month = f"{period:%Y-%m}"
    return {
        "accepted": lake / source / month / f"{file_hash}.parquet",
        "quarantine": lake / "quarantine" / source / month / f"{file_hash}.parquet",
        "file_load": lake / "file_loads" / source / month / f"{file_hash}.parquet",
    }


def history_paths(lake: Path, source: str, period: dt.date, file_hash: str) -> dict[str, Path]:
    """Where a landing goes once its file is no longer in the inbox (submissions.py)."""
    return {
        kind: lake / "history" / path.relative_to(lake)
        for kind, path in lake_paths(lake, source, period, file_hash).items()
    }


def first_delivered_at(
    lake: Path, source: str, period: dt.date, file_hash: str, modified_at: dt.datetime
) -> dt.datetime:
    """When these bytes were first delivered: the earliest of the file's modification
    time and any earlier landing of the same hash (current, or in history after a
    withdrawal). Restoring a file's original bytes is not a new, late delivery."""
    earlier = [
        read_file_load(paths["file_load"]).submitted_at
        for paths in (lake_paths(lake, source, period, file_hash), history_paths(lake, source, period, file_hash))
        if paths["file_load"].exists()
    ]
    return min([modified_at, *earlier])


def config_fingerprint(mapping: SourceMapping, registry: DepartmentRegistry) -> str:
    """What a landing depends on besides the file's bytes. A file is landed again
    when it changes: a department added to the registry, a mapping corrected."""
    digest = hashlib.sha256(LANDING_RULES_VERSION.encode())
    digest.update(mapping.model_dump_json().encode())
    digest.update(registry.model_dump_json().encode())
    digest.update(repr(mapping.table.columns).encode())  # a canonical column added or changed
    digest.update(masking.key_fingerprint().encode())  # identifiers are masked under this key
    if any(c.keywords_of for c in mapping.table.columns):
        digest.update(keywords.config_fingerprint().encode())  # stopwords, parts of speech, top_k
    return digest.hexdigest()


def file_logs(lake: Path) -> list[dict]:
    """The log row of every file landed in the lake (not those moved to history). A
    log that cannot be read is an error naming it: the lake is damaged."""
    rows = []
    for path in sorted((lake / "file_loads").glob("*/*/*.parquet")):
        if path.parent.parent.name == "_schema":
            continue
        try:
            rows.append(pq.read_table(path).to_pylist()[0])
        except (OSError, IndexError, pa.ArrowException) as error:
            raise ExtractError(f"the lake's file log {path} cannot be read ({error}); see `govperf verify`") from None
    return rows


def read_file_load(path: Path) -> FileLanding:
    row = pq.read_table(path).to_pylist()[0]
    row.setdefault("submitted_at", row["loaded_at"])  # landed before submission times were kept
    row.setdefault("layout", None)  # landed before layouts
    row.setdefault("first_row_month", None)  # landed before it was kept
    return FileLanding(**row)


def land_file(
    path: Path,
    file_name: str,
    mapping: SourceMapping,
    registry: DepartmentRegistry,
    lake: Path,
    archive_dir: Path,
) -> FileLanding:
    """Land one file. Loading the same bytes again, under the same mapping and
    registry, returns the earlier landing unchanged."""
    period = mapping.period_of(file_name)
    if period is None:
        raise ExtractError(
            f"{printable(file_name)}: the file name carries no period matching {mapping.period_pattern!r}"
        )
    file_hash = sha256_of(path)
    fingerprint = config_fingerprint(mapping, registry)
    paths = lake_paths(lake, mapping.source, period, file_hash)
    if paths["file_load"].exists() and paths["accepted"].exists():
        earlier = read_file_load(paths["file_load"])
        if earlier.config_fingerprint == fingerprint:
            return earlier

    archived = archive_original(path, file_hash, archive_dir)
    landing = FileLanding(
        source=mapping.source,
        period=period,
        file_name=file_name,
        file_hash=file_hash,
        file_format=mapping.format,
        layout=None,
        encoding=None,
        header_line=None,
        rows_read=0,
        rows_accepted=0,
        rows_quarantined=0,
        notes_rows=0,
        file_error=None,
        archive_path=str(archived.relative_to(archive_dir.parent)),
        config_fingerprint=fingerprint,
        submitted_at=first_delivered_at(
            lake,
            mapping.source,
            period,
            file_hash,
            dt.datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0),
        ),
        loaded_at=dt.datetime.now().replace(microsecond=0),
    )
    for target in paths.values():
        target.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="govperf-ingest-") as workdir:
        con = duckdb_connection()
        try:
            con.execute(f"set temp_directory='{workdir}'")
            masking.register(con)
            keywords.register(con)
            try:
                kind = sniff(path)
                landing.file_format = kind.name  # what it really is, whatever its name
                landing.layout, mapping = choose_layout(path, kind, mapping, file_name)
                if refusal := mismatch(kind, mapping.format, file_name):
                    raise ExtractError(refusal)
                if kind.family == "text":
                    result = read_csv(con, path, mapping, Path(workdir))
                else:
                    result = read_spreadsheet(con, path, mapping, kind)
            except ExtractError as exc:
                landing.file_error = printable(masking.mask_free_text(str(exc)))
                _quarantine_whole_file(con, path, landing, mapping, paths, Path(workdir))
                _write_file_load(landing, paths["file_load"])
                return landing
            landing.encoding = result.encoding
            if result.delimiter not in (None, ","):  # the text layout found: csv/tab, csv/semicolon, csv/pipe
                landing.file_format = f"csv/{DELIMITERS[result.delimiter]}"
            landing.header_line = result.header_line
            landing.rows_read = result.rows_read
            landing.notes_rows = result.notes_rows

            try:
                constants = mapping.constants | title_constants(mapping, result.title_lines, file_name)
            except ExtractError as exc:
                landing.file_error = printable(masking.mask_free_text(str(exc)))
                _quarantine_whole_file(con, path, landing, mapping, paths, Path(workdir))
                _write_file_load(landing, paths["file_load"])
                return landing
            headers = [r[0] for r in con.execute("describe extract_rows").fetchall()]
            mapping = mapping.resolved(headers)  # each column's alias this file uses
            register_departments(con, registry)
            con.execute(
                f"create or replace table extract_checked as {clean_sql(mapping, period, headers, constants, landing.submitted_at)}"
            )
            landing.rows_accepted, landing.rows_quarantined = _write_outputs(con, mapping, landing, paths)
            landing.first_row_month = _first_row_month(con, mapping)
        finally:
            con.close()
    _write_file_load(landing, paths["file_load"])
    return landing


# ------------------------------------------------------------------ outputs


def _write_outputs(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, landing: FileLanding, paths: dict[str, Path]
) -> tuple[int, int]:
    columns = ", ".join(c.name for c in mapping.table.columns)
    mark_duplicates(con, mapping)
    if mapping.unpivot:
        # A record fails as a whole when any of its unpivoted rows fails.
        con.execute(
            "create or replace table extract_checked as select * replace ("
            "string_agg(distinct _reason, '; ') over (partition by _line) as _reason) from extract_checked"
        )
    # _month: the month of the row's own date (the table's activity date), else the
    # file's period: with the department, the slice a resubmission replaces.
    activity = mapping.table.activity_date
    month = f"date_trunc('month', {activity})::date" if activity else f"date '{landing.period.isoformat()}'"
    meta = (
        f"{_lit(landing.file_name)} as _file_name, {_lit(landing.file_hash)} as _file_hash, "
        f"date '{landing.period.isoformat()}' as _period, {month} as _month"
    )
    # In the file's order: the department lookup's join does not keep it, and the same
    # bytes must land as the same Parquet rows (a rerun after a crash equals a clean run).
    _copy(
        con,
        f"select {columns}, {meta}, _line from extract_checked where _reason is null order by _line, __row",
        paths["accepted"],
    )
    quarantine_sql = f"""
        select {_lit(landing.source)} as source, date '{landing.period.isoformat()}' as period,
               {_lit(landing.file_name)} as file_name, {_lit(landing.file_hash)} as file_hash,
               _line as line, {mask_sql("_raw")} as raw_text, {mask_sql("reason")} as reason
        from (
            select failed._line, raw._raw, failed.reason
            from (select distinct _line, _reason as reason from extract_checked where _reason is not null) as failed
            inner join (
                select * from extract_raw
                where _line in (select _line from extract_checked where _reason is not null)
            ) as raw using (_line)
            union all
            select _line, _raw, reason from extract_rejects
        )
        order by line
    """
    _copy(con, quarantine_sql, paths["quarantine"])
    accepted = con.execute("select count(distinct _line) from extract_checked where _reason is null").fetchall()[0][0]
    quarantined = con.execute(
        "select (select count(distinct _line) from extract_checked where _reason is not null)"
        " + (select count(*) from extract_rejects)"
    ).fetchall()[0][0]
    return int(accepted), int(quarantined)


def _first_row_month(con: duckdb.DuckDBPyConnection, mapping: SourceMapping) -> dt.date | None:
    activity = mapping.table.activity_date
    if activity is None:
        return None
    return con.execute(
        f"select min(date_trunc('month', {activity}))::date from extract_checked where _reason is null"
    ).fetchall()[0][0]


def _copy(con: duckdb.DuckDBPyConnection, sql: str, target: Path) -> None:
    temporary = temporary_beside(target)
    con.execute(f"copy ({sql}) to {_lit(str(temporary))} (format parquet, compression zstd)")
    temporary.replace(target)


def _quarantine_whole_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    landing: FileLanding,
    mapping: SourceMapping,
    paths: dict[str, Path],
    workdir: Path,
) -> None:
    """A file that cannot be read at all: every non-blank line goes to quarantine
    with the reason (read as a stream; see refused.py)."""
    lines = workdir / "refused_lines.parquet"
    fixed = {
        "source": landing.source,
        "period": landing.period,
        "file_name": landing.file_name,
        "file_hash": landing.file_hash,
        "reason": landing.file_error,
    }
    try:
        # Line by line only for a text file read as text: a file of another kind than its
        # mapping says is one refusal (the original is in the archive), never its bytes as lines.
        by_line = mapping.format == "csv" and landing.file_format.split("/")[0] == "csv"  # csv, csv/tab, …
        count = write_refused_lines(path, by_line, landing.encoding, lines, QUARANTINE_SCHEMA, fixed)
        _copy(
            con,
            f"select * replace ({mask_sql('raw_text')} as raw_text) from read_parquet({_lit(str(lines))})",
            paths["quarantine"],
        )
    finally:
        lines.unlink(missing_ok=True)
    landing.rows_read = landing.rows_quarantined = count
    # An empty accepted file with the canonical columns, so the lake stays uniform.
    _copy(con, _no_rows_sql(mapping.table), paths["accepted"])


# What ingest adds to every accepted row, after the canonical columns (land_file).
LINEAGE_COLUMNS = (
    ("_file_name", "varchar"),
    ("_file_hash", "varchar"),
    ("_period", "date"),
    ("_month", "date"),
    ("_line", "bigint"),
)


def _no_rows_sql(table: CanonicalTable) -> str:
    """A query with the accepted rows' columns and types, and no rows."""
    columns = [f"null::{DUCKDB_TYPES[c.type]} as {c.name}" for c in table.columns]
    columns += [f"null::{kind} as {name}" for name, kind in LINEAGE_COLUMNS]
    return f"select {', '.join(columns)} where false"


def _write_file_load(landing: FileLanding, target: Path) -> None:
    write_table(pa.Table.from_pylist([asdict(landing)], schema=FILE_LOAD_SCHEMA), target)


# The comments' sentiment scores (written by analytics/comment_sentiment,
# pipelines/analytics/comments.py): part of the lake's layout, so its empty schema
# file is written with the others (ingest/assets.py ensure_lake_schemas) and dbt reads
# the folder before anything is scored.
SENTIMENT_FOLDER = "comment_sentiment"
SENTIMENT_SCHEMA = pa.schema(
    [
        ("_source", pa.string()),
        ("_file_hash", pa.string()),
        ("_period", pa.date32()),
        ("_line", pa.int64()),
        ("negative_p", pa.float64()),
        # The text as the copied-comment screen compares it: NFKC, lower case, without
        # whitespace, punctuation and symbols; its characters and a digest of it.
        ("text_chars", pa.int64()),
        ("text_key", pa.string()),
    ]
)


# The forecasts of target attainment (written by analytics/target_forecasts,
# pipelines/analytics/target_forecasts.py, one file per month they were made in):
# part of the lake's layout for the same reason, so that dbt alone builds every model.
FORECAST_FOLDER = "target_forecasts"
FORECAST_SCHEMA = pa.schema(
    [
        ("period", pa.date32()),  # the month the forecast was made in (data through it)
        ("catalogue_version", pa.string()),
        ("department_id", pa.string()),
        ("indicator_id", pa.string()),
        ("last_period", pa.date32()),
        ("forecast_period", pa.date32()),
        ("horizon_months", pa.int32()),
        ("n_months", pa.int32()),
        ("forecast_model", pa.string()),  # forecast.py's "model" ("model" is an SQL keyword)
        ("forecast", pa.float64()),
        ("lo80", pa.float64()),
        ("hi80", pa.float64()),
        ("target", pa.float64()),
        ("direction", pa.string()),
        ("p_meet", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)


def empty_source_file(lake: Path, mapping_table: CanonicalTable) -> Path:
    """A zero-row Parquet file with the canonical columns, so a source with no
    extracts yet still has a schema for dbt to read."""
    target = lake / mapping_table.name / "_schema" / "empty.parquet"
    # every column a landed row has, the lineage ones (_file_hash, _month…) included:
    # dbt reads a source's folder by name, and this file gives the columns no file has yet
    expected = [c.name for c in mapping_table.columns] + [name for name, _ in LINEAGE_COLUMNS]
    if not target.exists() or pq.read_schema(target).names != expected:
        target.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb_connection()
        _copy(con, _no_rows_sql(mapping_table), target)
        con.close()
    return target
