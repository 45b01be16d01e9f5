"""Land one extract file: archive it, read it, clean and validate every row in SQL,
and write the accepted rows and the quarantined rows as Parquet.

Layout under the lake (one file per accepted original, named by its SHA-256):
    lake/<source>/<YYYY-MM>/<sha256>.parquet            accepted rows, canonical columns
    lake/quarantine/<source>/<YYYY-MM>/<sha256>.parquet rows that failed, with line and reason
    lake/file_loads/<source>/<YYYY-MM>/<sha256>.parquet one row: counts, encoding, load time

Everything here runs in a private in-memory DuckDB, never in the warehouse file,
so ingest steps can run in parallel processes without fighting over its lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.ingest import keywords, masking
from pipelines.ingest.canonical import DUCKDB_TYPES, CanonicalTable, Column
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.masking import mask_sql
from pipelines.ingest.readers import ExtractError, read_csv, read_spreadsheet
from pipelines.ingest.refused import write_refused_lines
from pipelines.parquet import temporary_beside, write_table
from pipelines.reference import DepartmentRegistry
from pipelines.text import printable

FULL_WIDTH = "０１２３４５６７８９．，－＋：／　"
HALF_WIDTH = "0123456789.,-+:/ "
TYPE_WORDS = {
    "integer": "整数 (integer)",
    "number": "数值 (number)",
    "date": "日期 (date)",
    "timestamp": "日期时间 (timestamp)",
    "boolean": "是/否 (yes/no)",
    "string": "文本 (text)",
}
BOOLEAN_TRUE = ("是", "true", "1", "y", "yes", "t", "√")
BOOLEAN_FALSE = ("否", "false", "0", "n", "no", "f", "×")
# Free-text columns that may carry citizens' personal data: names are looked for
# here (and in quarantined raw text); ID and phone numbers in every text value.
FREE_TEXT = {"comment", "content", "remarks", "reason"}
# Column types whose text is masked before it is typed. A date, time or yes/no
# that parses holds no personal data, and one that does not is quarantined with
# its text in the reason, which is masked.
MASKED_TYPES = ("string", "integer", "number")

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
        ("encoding", pa.string()),
        ("header_line", pa.int64()),
        ("rows_read", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("notes_rows", pa.int64()),
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
LANDING_RULES_VERSION = "7"


@dataclass
class FileLanding:
    source: str
    period: dt.date
    file_name: str
    file_hash: str
    file_format: str
    encoding: str | None
    header_line: int | None
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    notes_rows: int
    file_error: str | None
    archive_path: str
    config_fingerprint: str
    # When the department delivered the file: its modification time in the inbox.
    # Orders resubmissions and decides lateness against the submission deadline.
    submitted_at: dt.datetime
    loaded_at: dt.datetime

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_accepted + self.rows_quarantined


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


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


def read_file_load(path: Path) -> FileLanding:
    row = pq.read_table(path).to_pylist()[0]
    row.setdefault("submitted_at", row["loaded_at"])  # landed before submission times were kept
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
        raise ExtractError(f"{printable(file_name)}: the file name carries no period matching {mapping.period_pattern!r}")
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
        encoding=None,
        header_line=None,
        rows_read=0,
        rows_accepted=0,
        rows_quarantined=0,
        notes_rows=0,
        file_error=None,
        archive_path=str(archived.relative_to(archive_dir.parent)),
        config_fingerprint=fingerprint,
        submitted_at=dt.datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0),
        loaded_at=dt.datetime.now().replace(microsecond=0),
    )
    for target in paths.values():
        target.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="govperf-ingest-") as workdir:
        con = duckdb.connect()
        try:
            con.execute(f"set temp_directory='{workdir}'")
            masking.register(con)
            keywords.register(con)
            try:
                if mapping.format == "csv":
                    result = read_csv(con, path, mapping, Path(workdir))
                else:
                    result = read_spreadsheet(con, path, mapping)
            except ExtractError as exc:
                landing.file_error = printable(masking.mask_free_text(str(exc)))
                _quarantine_whole_file(con, path, landing, mapping, paths, Path(workdir))
                _write_file_load(landing, paths["file_load"])
                return landing
            landing.encoding = result.encoding
            landing.header_line = result.header_line
            landing.rows_read = result.rows_read
            landing.notes_rows = result.notes_rows

            try:
                constants = mapping.constants | _title_constants(mapping, result.title_lines, file_name)
            except ExtractError as exc:
                landing.file_error = printable(masking.mask_free_text(str(exc)))
                _quarantine_whole_file(con, path, landing, mapping, paths, Path(workdir))
                _write_file_load(landing, paths["file_load"])
                return landing
            headers = [r[0] for r in con.execute("describe extract_rows").fetchall()]
            _register_departments(con, registry)
            con.execute(
                f"create or replace table extract_checked as {_clean_sql(mapping, period, headers, constants, landing.submitted_at)}"
            )
            landing.rows_accepted, landing.rows_quarantined = _write_outputs(con, mapping, landing, paths)
        finally:
            con.close()
    _write_file_load(landing, paths["file_load"])
    return landing


# ------------------------------------------------------------------ cleaning SQL

def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _trimmed_expr(header: str) -> str:
    """Without spaces, tabs and the full-width space (typed in Chinese input mode)
    around it. Most values have none, and the cheap test spares them the trim."""
    value = _ident(header)
    needs_trim = (
        f"starts_with({value}, ' ') or ends_with({value}, ' ') "
        f"or contains({value}, chr(9)) or contains({value}, chr(12288))"
    )
    return f"(case when {needs_trim} then trim({value}, ' ' || chr(9) || chr(12288)) else {value} end)"


def _text_expr(trimmed: str, mapping: SourceMapping) -> str:
    """NULL for the placeholders offices use for 'no value'."""
    longest = max((len(v) for v in mapping.missing_values), default=0)
    placeholders = ", ".join(_lit(v) for v in mapping.missing_values)
    # Placeholders are short: the length test spares the list for most values.
    return f"(case when length({trimmed}) <= {longest} and {trimmed} in ({placeholders}) then null else {trimmed} end)"


def _typed_expr(column: Column, text: str, mapping: SourceMapping) -> str:
    """Typed value of `text`. Each type tries the plain form first, with a cast,
    and only then the forms offices write by hand, which cost a regex."""
    half = f"translate({text}, {_lit(FULL_WIDTH)}, {_lit(HALF_WIDTH)})"
    # The whole text must be a number, optionally followed by a unit word
    # ("5个工作日", "12.5%"); "2025-03-01" or "1.5万" is not silently cut short.
    written_number = (
        f"try_cast(nullif(regexp_extract(replace({half}, ',', ''), "
        "'^\\s*([+-]?[0-9]+(\\.[0-9]+)?)\\s*(%|个?工作日|天|日|小时|分|元|件|个|人|次|项)?\\s*$', 1), '') as double)"
    )
    if column.type == "string":
        return text
    # CASE, not COALESCE: DuckDB evaluates a CASE branch only for the rows that reach it.
    if column.type == "number":
        return f"(case when try_cast({text} as double) is not null then try_cast({text} as double) else {written_number} end)"
    if column.type == "integer":
        return (
            f"(case when try_cast({text} as bigint) is not null then try_cast({text} as bigint) "
            f"when {written_number} = floor({written_number}) then try_cast({written_number} as bigint) end)"
        )
    if column.type == "date":
        formats = _list(mapping.date_formats + mapping.timestamp_formats + ["%Y年%m月"])
        return (
            f"(case when try_cast({text} as date) is not null then try_cast({text} as date) "
            f"else try_strptime({half}, {formats})::date end)"
        )
    if column.type == "timestamp":
        formats = _list(mapping.timestamp_formats + mapping.date_formats)
        return (
            f"(case when try_cast({text} as timestamp) is not null then try_cast({text} as timestamp) "
            f"else try_strptime({half}, {formats}) end)"
        )
    if column.type == "boolean":
        return (
            f"(case when lower({text}) in ({', '.join(_lit(v) for v in BOOLEAN_TRUE)}) then true "
            f"when lower({text}) in ({', '.join(_lit(v) for v in BOOLEAN_FALSE)}) then false end)"
        )
    raise AssertionError(column.type)


def _mapped_value(column: str, text: str, mapping: SourceMapping) -> str:
    value_map = mapping.values.get(column)
    if not value_map:
        return text
    cases = " ".join(f"when {_lit(k)} then {_lit(v)}" for k, v in value_map.items())
    return f"(case {text} {cases} else {text} end)"


def _title_constants(mapping: SourceMapping, title_lines: list[str], file_name: str) -> dict[str, str]:
    """Values the mapping reads from the title lines above the header."""
    found = {}
    for column, pattern in mapping.title_values.items():
        match = next((m for line in title_lines if (m := re.search(pattern, line))), None)
        if match is None:
            raise ExtractError(
                f"{file_name}: lines 1-{len(title_lines)}: no title line matches {pattern!r} "
                f"(needed for {column}); title lines: {title_lines}"
            )
        found[column] = match["value"].strip()
    return found


def _clean_sql(
    mapping: SourceMapping, period: dt.date, headers: list[str], constants: dict[str, str], delivered_at: dt.datetime
) -> str:
    """One SELECT giving typed canonical columns, _line and the reasons a row fails."""
    table: CanonicalTable = mapping.table
    source_rows = "extract_rows"
    header_of = dict(mapping.columns)
    if mapping.unpivot:
        unpivot = mapping.unpivot
        names = unpivot.names(headers)
        keys = ", ".join(_ident(h) for h in names)
        question_map = " ".join(f"when {_lit(h)} then {_lit(q)}" for h, q in names.items())
        source_rows = (
            f"(select *, case __question {question_map} end as __question_id "
            f"from extract_rows unpivot include nulls (__value for __question in ({keys})))"
        )
        header_of[unpivot.name_column] = "__question_id"
        header_of[unpivot.value_column] = "__value"

    trims, texts, masks, typed, reasons = [], [], [], [], []
    for column in table.columns:
        header = header_of.get(column.name)
        if column.keywords_of:
            # Read from the masked text of the free-text column, never from the extract.
            source = f"__text_{column.keywords_of}"
            produced = any(t.endswith(f" as {source}") for t in texts)
            typed.append(f"{keywords.keywords_sql(source) if produced else 'null::varchar'} as {column.name}")
            continue
        if header is None and column.name in constants:
            text = _mapped_value(column.name, _lit(constants[column.name]), mapping)
            label = f"常量 {column.name}".replace("'", "''")
        elif header is None:
            typed.append(f"null::{DUCKDB_TYPES[column.type]} as {column.name}")
            continue
        else:
            trims.append(f"{_trimmed_expr(header)} as __trim_{column.name}")
            text = _mapped_value(column.name, _text_expr(f"__trim_{column.name}", mapping), mapping)
            label = header.replace("'", "''")
        source_text = f"__text_{column.name}"
        texts.append(f"{text} as {source_text}")
        if header is not None:
            # A NUL byte is never stored: it is how a damaged export or a binary
            # paste shows, and it truncates the text in C-based tools downstream.
            reasons.append(
                f"case when contains({source_text}, chr(0)) then "
                f"'列「{label}」含 NUL 字节 (NUL byte in column {label})' end"
            )
        if column.type in MASKED_TYPES and column.personal and not column.department:
            # Personal data is masked in the text itself: typed values, reasons and
            # everything after them only ever see the masked text.
            kind = "identifier" if column.identifier else "free_text" if column.name in FREE_TEXT else "field"
            masks.append(f"{mask_sql(source_text, kind)} as {source_text}")
        if column.department:
            typed.append(f"__dept.department_id as {column.name}")
        else:
            value = _typed_expr(column, source_text, mapping)
            typed.append(f"{value} as {column.name}")
            if column.type != "string":
                reasons.append(
                    f"case when {source_text} is not null and {column.name} is null then "
                    f"'列「{label}」的值「' || left({source_text}, 40) || '」不是有效的{TYPE_WORDS[column.type]}' end"
                )
        if column.required:
            reasons.append(f"case when {source_text} is null then '必填列「{label}」为空 (required value missing)' end")
        if column.allowed:
            allowed = ", ".join(_lit(v) for v in column.allowed)
            shown = "/".join(column.allowed)
            reasons.append(
                f"case when {source_text} is not null and {source_text} not in ({allowed}) then "
                f"'列「{label}」的值「' || left({source_text}, 40) || '」不在允许值 ({shown}) 之中' end"
            )
        if column.department:
            activity = f"{table.activity_date}::date" if table.activity_date else f"date '{period.isoformat()}'"
            reasons.append(
                f"case when {source_text} is not null and __dept_id is null then "
                f"'未知部门「' || {source_text} || '」 (unknown department; add it to departments.yaml or fix the extract)' "
                f"when __dept_id is not null and {activity} is not null and "
                f"({activity} < __dept_valid_from or {activity} > coalesce(__dept_valid_to, date '9999-12-31')) then "
                f"'部门「' || {source_text} || '」在 ' || strftime({activity}, '%Y-%m-%d') || ' 不在存续期 (' || "
                f"strftime(__dept_valid_from, '%Y-%m-%d') || ' 至 ' || coalesce(strftime(__dept_valid_to, '%Y-%m-%d'), '今') || ')' "
                f"|| coalesce('，已并入 ' || __dept_merged_into, '') end"
            )

    dept_column = next(c for c in table.columns if c.department)
    delivered = f"timestamp '{delivered_at:%Y-%m-%d %H:%M:%S}'"
    typed_names = {c.name for c in table.columns}
    reasons += [
        f"case when not coalesce({rule.sql.format(delivered_at=delivered)}, true) then '{rule.reason}' end"
        for rule in table.rules
        if {rule.column} <= typed_names
    ]
    # Three steps, so that each value is parsed once: text, then typed values,
    # then the reasons a row fails, which read both.
    return f"""
        with trimmed as (
            select _line, {', '.join(trims) or "null as __none"} from {source_rows}
        ),
        unmasked as (
            select _line, {', '.join(texts)} from trimmed
        ),
        texts as (
            select * {f"replace ({', '.join(masks)})" if masks else ""} from unmasked
        ),
        typed as (
            select texts.*, __dept.department_id as __dept_id, __dept.valid_from as __dept_valid_from,
                   __dept.valid_to as __dept_valid_to, __dept.merged_into as __dept_merged_into,
                   {', '.join(typed)}
            from texts
            left join department_lookup as __dept on __dept.ref = texts.__text_{dept_column.name}
        )
        select *, nullif(concat_ws('; ', {', '.join(reasons) or "null"}), '') as _reason
        from typed
    """


def _register_departments(con: duckdb.DuckDBPyConnection, registry: DepartmentRegistry) -> None:
    rows = []
    for d in registry.departments:
        for ref in {d.id, d.name, *d.aliases}:
            rows.append(
                {"ref": ref, "department_id": d.id, "valid_from": d.valid_from, "valid_to": d.valid_to,
                 "merged_into": d.merged_into}
            )
    con.register("department_lookup_arrow", pa.Table.from_pylist(rows))
    con.execute("create or replace table department_lookup as select * from department_lookup_arrow")
    con.unregister("department_lookup_arrow")


# ------------------------------------------------------------------ outputs

def _write_outputs(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, landing: FileLanding, paths: dict[str, Path]
) -> tuple[int, int]:
    columns = ", ".join(c.name for c in mapping.table.columns)
    if mapping.unpivot:
        # A record fails as a whole when any of its unpivoted rows fails.
        con.execute(
            "create or replace table extract_checked as select * replace ("
            "string_agg(distinct _reason, '; ') over (partition by _line) as _reason) from extract_checked"
        )
    meta = (
        f"{_lit(landing.file_name)} as _file_name, {_lit(landing.file_hash)} as _file_hash, "
        f"date '{landing.period.isoformat()}' as _period"
    )
    _copy(con, f"select {columns}, {meta}, _line from extract_checked where _reason is null", paths["accepted"])
    quarantine_sql = f"""
        select {_lit(landing.source)} as source, date '{landing.period.isoformat()}' as period,
               {_lit(landing.file_name)} as file_name, {_lit(landing.file_hash)} as file_hash,
               _line as line, {mask_sql('_raw')} as raw_text, {mask_sql('reason')} as reason
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
    accepted = con.execute(
        "select count(distinct _line) from extract_checked where _reason is null"
    ).fetchall()[0][0]
    quarantined = con.execute(
        "select (select count(distinct _line) from extract_checked where _reason is not null)"
        " + (select count(*) from extract_rejects)"
    ).fetchall()[0][0]
    return int(accepted), int(quarantined)


def _copy(con: duckdb.DuckDBPyConnection, sql: str, target: Path) -> None:
    temporary = temporary_beside(target)
    con.execute(f"copy ({sql}) to {_lit(str(temporary))} (format parquet, compression zstd)")
    temporary.replace(target)


def _quarantine_whole_file(
    con: duckdb.DuckDBPyConnection, path: Path, landing: FileLanding, mapping: SourceMapping, paths: dict[str, Path],
    workdir: Path,
) -> None:
    """A file that cannot be read at all: every non-blank line goes to quarantine
    with the reason (read as a stream; see refused.py)."""
    lines = workdir / "refused_lines.parquet"
    fixed = {
        "source": landing.source, "period": landing.period, "file_name": landing.file_name,
        "file_hash": landing.file_hash, "reason": landing.file_error,
    }
    try:
        count = write_refused_lines(path, mapping.format, landing.encoding, lines, QUARANTINE_SCHEMA, fixed)
        _copy(
            con, f"select * replace ({mask_sql('raw_text')} as raw_text) from read_parquet({_lit(str(lines))})",
            paths["quarantine"],
        )
    finally:
        lines.unlink(missing_ok=True)
    landing.rows_read = landing.rows_quarantined = count
    # An empty accepted file with the canonical columns, so the lake stays uniform.
    _copy(con, _no_rows_sql(mapping.table), paths["accepted"])


def _no_rows_sql(table: CanonicalTable) -> str:
    """A query with the accepted rows' columns and types, and no rows."""
    columns = ", ".join(f"null::{DUCKDB_TYPES[c.type]} as {c.name}" for c in table.columns)
    return (
        f"select {columns}, null::varchar as _file_name, null::varchar as _file_hash, null::date as _period, "
        "null::bigint as _line where false"
    )


def _write_file_load(landing: FileLanding, target: Path) -> None:
    write_table(pa.Table.from_pylist([asdict(landing)], schema=FILE_LOAD_SCHEMA), target)


def empty_source_file(lake: Path, mapping_table: CanonicalTable) -> Path:
    """A zero-row Parquet file with the canonical columns, so a source with no
    extracts yet still has a schema for dbt to read."""
    target = lake / mapping_table.name / "_schema" / "empty.parquet"
    expected = [c.name for c in mapping_table.columns]
    if not target.exists() or pq.read_schema(target).names[: len(expected)] != expected:
        target.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        _copy(con, _no_rows_sql(mapping_table), target)
        con.close()
    return target
