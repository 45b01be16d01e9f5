"""Readers: turn one extract file into rows of text inside DuckDB.

Every reader produces the same thing: a DuckDB table `extract_rows` holding the
file's data records as VARCHAR columns named by the file's own headers, plus
`_line` (the record's line in the file, or its row in the sheet), and a view
`extract_raw(_line, _raw)` giving a record's text, which only quarantined rows
ever need. Records the parser cannot split into the header's columns go to
`extract_rejects(_line, _raw, reason)`. Nothing is typed here; cleaning and
validation happen in SQL afterwards, the same way for every format.

Rows read are counted separately from the parser (see `csv_scan.scan_csv`), so
that a parser skipping a line cannot hide it. CSV is streamed (here); workbooks
are read in pipelines/ingest/workbook_reader.py. What a file is comes from its
content (pipelines/ingest/sniff.py), never its name.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.ingest.csv_scan import (
    DELIMITERS,
    OversizedRecord,
    read_head_lines,
    scan_csv,
    without_records,
)
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.sniff import FileKind, mismatch, sniff

SNIFF_BYTES = 1 << 20
HEADER_SEARCH_ROWS = 30
# GBK and GB2312 files are decoded as GB18030, their superset, so that a rare
# character outside GBK does not fail a file the office believes to be GBK.
CHINESE_ENCODINGS = {"gb2312", "gbk", "gb18030", "hz", "cp936"}


class ExtractError(Exception):
    """The file as a whole cannot be read. The message names file, line and column."""


@dataclass
class ReadResult:
    encoding: str | None
    header_line: int
    rows_read: int  # data records, counted from the raw file
    notes_rows: int  # title/notes lines that are not records
    title_lines: list[str]  # the text of the lines above the header (a report's title block)
    delimiter: str | None = None  # a text file's, as found or as the mapping gives it


# ------------------------------------------------------------------ encoding


def detect_encoding(path: Path) -> str:
    """Name the file's encoding: UTF-8 (with or without BOM) or what the detector says."""
    from charset_normalizer import from_bytes

    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    cut = sample.rfind(b"\n") + 1 if len(sample) == SNIFF_BYTES else len(sample)
    try:
        sample[: cut or len(sample)].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample[: cut or len(sample)]).best()
    if best is None:
        raise ExtractError(f"{path.name}: cannot tell the text encoding; set `encoding` in the mapping")
    name = best.encoding.lower().replace("_", "")
    return "gb18030" if name in CHINESE_ENCODINGS else best.encoding


def transcode_to_utf8(path: Path, encoding: str, target: Path) -> None:
    """Decode `path` strictly and write it as UTF-8, in chunks; report the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(1 << 24):
            try:
                dst.write(decoder.decode(chunk))
            except UnicodeDecodeError as exc:
                raise _decode_error(path, encoding, offset + exc.start) from exc
            offset += len(chunk)
        try:
            dst.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise _decode_error(path, encoding, offset) from exc


def _decode_error(path: Path, encoding: str, byte_offset: int) -> ExtractError:
    # Counted in chunks: the bad byte may be 500 MB into the file.
    line, line_start, position = 1, 0, 0
    with path.open("rb") as handle:
        while position < byte_offset and (chunk := handle.read(min(1 << 24, byte_offset - position))):
            line += chunk.count(b"\n")
            if (last := chunk.rfind(b"\n")) >= 0:
                line_start = position + last + 1
            position += len(chunk)
    column = byte_offset - line_start + 1
    return ExtractError(
        f"{path.name}: line {line}, column {column} (byte {byte_offset}): not valid {encoding}; "
        "the file is in another encoding or damaged"
    )


# ------------------------------------------------------------------ header


def _normalise_header(value: object) -> str:
    return re.sub(r"\s+", "", str(value if value is not None else "")).lstrip("\ufeff")


def find_header(rows: list[list[object]], mapping: SourceMapping, file_name: str, tried: str = "") -> int:
    """0-based index of the header row among `rows` (the file's first rows). `tried`
    (which delimiter split them) goes into the message when the header is not found."""
    index, missing = _header_search(rows, mapping, file_name)
    if index is None:
        raise _no_header(rows, mapping, file_name, missing, tried)
    return index


def _no_header(
    rows: list[list[object]], mapping: SourceMapping, file_name: str, missing: list[str], tried: str
) -> ExtractError:
    if not any(any(_normalise_header(v) for v in row) for row in rows):
        return ExtractError(f"{file_name}: the file is empty")
    return ExtractError(
        f"{file_name}: no header row with the mapped columns {_rows_tried(mapping, len(rows))}{tried}; "
        f"missing columns: {', '.join(missing)}"
    )


def _rows_tried(mapping: SourceMapping, rows: int) -> str:
    if mapping.header_row == "auto":
        return f"in the first {rows} rows (header_row auto)"
    return f"at header_row {mapping.header_row}"


def _header_search(rows: list[list[object]], mapping: SourceMapping, file_name: str) -> tuple[int | None, list[str]]:
    """The header row's index, or None with the fewest headers any row missed."""
    wanted = [[_normalise_header(h) for h in group] for group in mapping.header_groups]
    if mapping.header_row != "auto":
        index = mapping.header_row - 1
        if index >= len(rows):
            raise ExtractError(f"{file_name}: header_row {mapping.header_row} is past the end of the file")
        candidates = [index]
    else:
        candidates = list(range(len(rows)))
    best_missing: list[str] | None = None
    for index in candidates:
        present = {_normalise_header(v) for v in rows[index]}
        missing = ["/".join(group) for group in wanted if not present.intersection(group)]
        if mapping.unpivot and mapping.unpivot.header_pattern and not mapping.unpivot.names(sorted(present)):
            missing.append(f"(a column matching {mapping.unpivot.header_pattern})")
        if not missing:
            return index, []
        if best_missing is None or len(missing) < len(best_missing):
            best_missing = missing
    return None, best_missing or ["/".join(group) for group in wanted]


def _csv_head(path: Path, encoding: str, delimiter: str) -> list[list[str]]:
    """The first lines of a CSV file, split into fields: where its header is looked
    for. Each line is cut at 1 MiB, so a hostile first line costs no more."""
    text = read_head_lines(path, HEADER_SEARCH_ROWS, encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def find_csv_header(
    path: Path, encoding: str, mapping: SourceMapping, file_name: str
) -> tuple[str, list[list[str]], int]:
    """The delimiter (the mapping's, or with `auto` the first of comma, tab, semicolon
    and pipe that finds the header), the file's first rows split by it, and the header
    row's index. The error names the delimiters and header rows tried."""
    candidates = list(DELIMITERS) if mapping.delimiter == "auto" else [mapping.delimiter]
    fewest: tuple[int, str, list[list[str]], list[str]] = (len(mapping.header_groups) + 2, ",", [], [])
    for delimiter in candidates:
        head = _csv_head(path, encoding, delimiter)
        index, missing = _header_search(head, mapping, file_name)
        if index is not None:
            return delimiter, head, index
        if len(missing) < fewest[0]:
            fewest = (len(missing), delimiter, head, missing)
    _count, delimiter, head, missing = fewest
    names = ", ".join(DELIMITERS[d] for d in candidates)
    tried = (
        f", splitting fields at {names} (delimiter auto; missing columns as split at {DELIMITERS[delimiter]})"
        if len(candidates) > 1
        else f", splitting fields at {names} (the mapping's delimiter)"
    )
    raise _no_header(head, mapping, file_name, missing, tried)


def file_kind(path: Path, mapping: SourceMapping) -> FileKind:
    """What the file really is (pipelines/ingest/sniff.py); ExtractError when that does
    not fit the mapping's format."""
    kind = sniff(path)
    refusal = mismatch(kind, mapping.format, path.name)
    if refusal:
        raise ExtractError(refusal)
    return kind


def check_header(path: Path, mapping: SourceMapping) -> None:
    """Raise ExtractError if `path` is not of the mapping's format, or lacks the
    mapped sheet or a mapped header, as reading it would; reads only as much of the
    file as finding the header needs."""
    kind = file_kind(path, mapping)
    if kind.family == "text":
        encoding = detect_encoding(path) if mapping.encoding == "auto" else mapping.encoding
        if encoding.lower().replace("-", "") in ("utf8", "ascii"):
            encoding = "utf-8-sig"
        find_csv_header(path, encoding, mapping, path.name)
    else:
        from pipelines.ingest.workbook_reader import check_workbook_header

        check_workbook_header(path, mapping, kind)


# ------------------------------------------------------------------ CSV

# A long free-text field is data, not an error (the default limit is 128 KiB);
# the mapping's limits.max_field_bytes bounds it, enforced by the scan.
csv.field_size_limit(2**31 - 1)


def read_csv(con: duckdb.DuckDBPyConnection, path: Path, mapping: SourceMapping, workdir: Path) -> ReadResult:
    encoding = detect_encoding(path) if mapping.encoding == "auto" else mapping.encoding
    if encoding.lower().replace("-", "") in ("utf8", "ascii"):
        utf8_path = path
        _check_utf8(path)
    else:
        utf8_path = workdir / "transcoded.csv"
        transcode_to_utf8(path, encoding, utf8_path)

    delimiter, head, header_index = find_csv_header(utf8_path, "utf-8-sig", mapping, path.name)
    # A trailing comma gives an unnamed column; name it as a spreadsheet would.
    header = [_normalise_header(h) or f"column{i + 1}" for i, h in enumerate(head[header_index])]
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise ExtractError(f"{path.name}: line {header_index + 1}: repeated column headers {duplicated}")
    header_line = header_index + 1  # title rows are single lines

    notes = re.compile(mapping.notes_pattern)
    scan = scan_csv(
        utf8_path, header_line, notes, mapping.limits.max_field_bytes, mapping.limits.max_record_bytes, delimiter
    )
    record_lines, notes_lines = scan.record_lines, scan.notes_lines
    if not record_lines:
        raise ExtractError(f"{path.name}: line {header_line}: a header and no data rows (header only)")
    if scan.oversized:
        # The parser never sees a record with a field over the limit: it is
        # quarantined from the scan's finding, and its lines stay blank.
        parsed_path = workdir / "without_oversized.csv"
        without_records(utf8_path, parsed_path, scan.oversized)
        utf8_path = parsed_path
    # Room for the longest record the parser reads (fields are bounded by the limit).
    max_line_size = max(4 << 20, scan.longest_record + 1024)

    columns = ", ".join(f"'{_sql_str(h)}': 'VARCHAR'" for h in header)
    con.execute(
        f"""
        create or replace table extract_parsed as
        select * from read_csv('{_sql_str(str(utf8_path))}', columns={{{columns}}}, header=true,
            skip={header_index}, auto_detect=false, delim='{_sql_str(delimiter)}', quote='"', escape='"',
            store_rejects=true, rejects_table='extract_reject_errors', rejects_scan='extract_reject_scans',
            null_padding=false, strict_mode=true, max_line_size={max_line_size})
        """
    )
    if scan.shifts:  # a quoted field held a newline: DuckDB's line numbers fall behind the file's
        _renumber_reject_lines(con, scan)
    notes_sql = _sql_str(mapping.notes_pattern)
    con.execute(
        """
        create or replace table extract_rejects as
        select line::bigint as _line, trim(csv_line, E'\\r\\n') as _raw,
               case error_type
                 when 'MISSING COLUMNS' then '列数不足 (missing columns): ' || error_message
                 when 'TOO MANY COLUMNS' then '列数过多 (too many columns): ' || error_message
                 when 'UNQUOTED VALUE' then '引号不匹配 (unbalanced quotes): ' || error_message
                 when 'LINE SIZE OVER MAXIMUM' then '行过长 (line too long): ' || error_message
                 else error_type::varchar || ': ' || error_message
               end as reason
        from extract_reject_errors
        where line not in (select unnest(?::bigint[]))  -- notes lines, found by the scan
        qualify row_number() over (partition by line order by column_idx) = 1
        """,
        [list(notes_lines)],
    )
    if scan.oversized:
        _add_oversized_rejects(con, scan.oversized, header, mapping.limits)
    # Parsed rows come in file order. Matched in order with the record lines the
    # scan found (less the rejected ones), each row gets its own line number.
    # Usually the records are one unbroken run of lines and nothing was rejected;
    # then a row's line is simply counted from the header.
    rejected = con.execute("select count(*) from extract_rejects").fetchall()[0][0]
    contiguous = not record_lines or record_lines[-1] - record_lines[0] + 1 == len(record_lines)
    quoted = [f'"{_sql_ident(h)}"' for h in header]
    # Blank rows (only commas or spaces) and notes rows are not records. Tested
    # cheaply first: a row whose first cell holds text is neither.
    rest_null = " and ".join(f"{q} is null" for q in quoted[1:]) or "true"
    everything = "concat(" + ", ".join(f"coalesce({q}, '')" for q in quoted) + ")"
    not_a_record = (
        f"(case when {quoted[0]} is not null and trim({quoted[0]}) <> '' and not ({rest_null}) then false "
        f"when trim({everything}) = '' then true "
        f"when {rest_null} then regexp_matches({quoted[0]}, '{notes_sql}') "
        "else false end)"
    )
    parsed_table = "extract_parsed"
    if notes_lines:
        # Below the first notes line, rows with text in the first cell only continue the notes.
        parsed_table = "extract_parsed_without_notes"
        con.execute(
            f"""
            create or replace table {parsed_table} as
            select * exclude (__k0, __in_notes) from (
                select *, bool_or({rest_null} and regexp_matches(coalesce({quoted[0]}, ''), '{notes_sql}'))
                          over (order by __k0 rows between unbounded preceding and current row) as __in_notes
                from (select *, row_number() over () as __k0 from extract_parsed)
            )
            where not (__in_notes and {rest_null})
            order by __k0
            """
        )
    if contiguous and not rejected:
        first_line = record_lines[0] if record_lines else header_line + 1
        con.execute(
            f"""
            create or replace view extract_rows as
            select {first_line} - 1 + row_number() over () as _line, *
            from {parsed_table}
            where not {not_a_record}
            """
        )
    else:
        con.register("record_lines_arrow", pa.table({"line": np.frombuffer(record_lines, dtype=np.int64)}))
        con.execute(
            f"""
            create or replace table extract_rows as
            with parsed as (
                select *, row_number() over () as __k from {parsed_table}
                where not {not_a_record}
            ),
            lines as (
                select line, row_number() over (order by line) as __k
                from record_lines_arrow
                where line not in (select _line from extract_rejects)
            )
            select lines.line as _line, parsed.* exclude (__k)
            from parsed left join lines using (__k)
            order by parsed.__k
            """
        )
        con.unregister("record_lines_arrow")
    con.execute(
        f"""
        create or replace view extract_raw as
        select _line, concat_ws('{_sql_str(delimiter)}', {", ".join(f"coalesce({q}, '')" for q in quoted)}) as _raw
        from extract_rows
        """
    )
    return ReadResult(
        encoding=encoding,
        delimiter=delimiter,
        header_line=header_line,
        rows_read=len(record_lines),
        notes_rows=len(notes_lines),
        title_lines=[_title_text(row) for row in head[:header_index]],
    )


def _renumber_reject_lines(con: duckdb.DuckDBPyConnection, scan) -> None:
    parser_lines = [row[0] for row in con.execute("select distinct line from extract_reject_errors").fetchall()]
    con.register(
        "reject_line_map",
        pa.table(
            {
                "parser_line": pa.array(parser_lines, pa.int64()),
                "file_line": pa.array([scan.physical_line(n) for n in parser_lines], pa.int64()),
            }
        ),
    )
    con.execute(
        """
        update extract_reject_errors set line = m.file_line
        from reject_line_map m where extract_reject_errors.line = m.parser_line
        """
    )
    con.unregister("reject_line_map")


def _oversized_reason(record: OversizedRecord, header: list[str], limits) -> str:
    if record.whole_record:
        return (
            f"记录过长 (record too long): line {record.line} holds {record.size:,} bytes; "
            f"the limit is {limits.max_record_bytes:,} (limits.max_record_bytes)"
        )
    name = header[record.column - 1] if record.column <= len(header) else "beyond the header"
    return (
        f"字段过长 (field too long): line {record.line}, column {record.column} ({name}) "
        f"holds {record.size:,} bytes; the limit is {limits.max_field_bytes:,} (limits.max_field_bytes)"
    )


def _add_oversized_rejects(
    con: duckdb.DuckDBPyConnection, records: list[OversizedRecord], header: list[str], limits
) -> None:
    rows = [
        {"_line": r.line, "_raw": f"{r.head}…" if r.head else "", "reason": _oversized_reason(r, header, limits)}
        for r in records
    ]
    con.register(
        "oversized_arrow",
        pa.Table.from_pylist(
            rows, schema=pa.schema([("_line", pa.int64()), ("_raw", pa.string()), ("reason", pa.string())])
        ),
    )
    con.execute("insert into extract_rejects select * from oversized_arrow")
    con.unregister("oversized_arrow")


def _title_text(cells: list[object]) -> str:
    texts = [str(c).strip() for c in cells if c is not None and str(c).strip()]
    # A title merged across columns is one label, read into every cell it covers.
    return " ".join(text for i, text in enumerate(texts) if i == 0 or text != texts[i - 1])


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _decode_error(path, "utf-8", offset + exc.start) from exc
            offset += len(chunk)


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _sql_ident(value: str) -> str:
    return value.replace('"', '""')
