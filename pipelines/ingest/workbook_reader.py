"""Reading a workbook: XLSX, legacy XLS (or WPS's .et), and the markup workbooks
(pipelines/ingest/markup_workbooks.py), into the same `extract_rows` a CSV gives
(pipelines/ingest/readers.py says what every reader produces).

A workbook is checked against the mapping's limits before it is read, and its rows
are counted by a second reader (the sheet's XML, or xlrd), independently of the one
that parses it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.ingest.csv_scan import is_notes
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.readers import (
    HEADER_SEARCH_ROWS,
    ExtractError,
    ReadResult,
    _normalise_header,
    _title_text,
    find_header,
)
from pipelines.ingest.sniff import FileKind
from pipelines.ingest.workbook_limits import WorkbookTooLarge, check_workbook


def check_workbook_header(path: Path, mapping: SourceMapping, kind: FileKind) -> None:
    """Raise ExtractError if the workbook is over its limits, or lacks the mapped sheet
    or a mapped header, as reading it would."""
    _check_workbook_limits(path, mapping)
    _find_sheet_header(path, _sheet_rows(path, kind, mapping), mapping)


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if value.time() != dt.time() else value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sheet_rows(path: Path, kind: FileKind, mapping: SourceMapping) -> list[tuple[str, list[list[object]]]]:
    """Every sheet's rows, for XLSX and legacy XLS alike, and for an HTML table or an
    Excel 2003 XML workbook (pipelines/ingest/markup_workbooks.py).

    calamine reads the cells that are there: some exporters declare a wrong sheet
    dimension (e.g. "A1"), and a reader trusting it would see one row.
    """
    if kind.name in MARKUP_READERS:
        return _markup_sheets(path, kind, mapping)
    from python_calamine import CalamineWorkbook

    try:
        if path.suffix.lower() == SUFFIX_OF_KIND.get(kind.name):
            workbook = CalamineWorkbook.from_path(str(path))
        else:  # calamine picks its reader by the name; from the content instead (.et, a renamed file)
            with path.open("rb") as handle:
                workbook = CalamineWorkbook.from_filelike(handle)
        sheets = []
        for name in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            sheets.append((name, _unmerged(sheet.to_python(skip_empty_area=False), sheet.merged_cell_ranges or [])))
        return sheets
    except Exception as exc:  # calamine raises its own error kinds for damaged files
        raise ExtractError(f"{path.name}: not a readable workbook ({type(exc).__name__}: {exc})") from exc


def _unmerged(rows: list[list[object]], merged: list) -> list[list[object]]:
    """Each merged range's value (its top-left cell's) in every cell it covers, as a
    label merged over the rows it names means. Only cells the sheet holds are filled,
    and merged ranges do not overlap: ranges filling more cells than the sheet holds
    are a damaged or hostile file, refused rather than filled again and again."""
    budget = sum(len(row) for row in rows)
    for (top, left), (bottom, right) in merged:
        if top >= len(rows) or left >= len(rows[top]):
            continue
        value = rows[top][left]
        for row in rows[top : bottom + 1]:
            width = max(min(right + 1, len(row)) - left, 0)
            budget -= width
            if budget < 0:
                raise ValueError("merged ranges cover more cells than the sheet holds (they overlap)")
            row[left : left + width] = [value] * width
    return rows


def _markup_sheets(path: Path, kind: FileKind, mapping: SourceMapping) -> list[tuple[str, list[list[object]]]]:
    from xml.etree.ElementTree import ParseError

    from pipelines.ingest.markup_workbooks import TooManyCells, TooManyRows, html_sheets, spreadsheetml_sheets

    read = {"html": html_sheets, "spreadsheetml2003": spreadsheetml_sheets}[kind.name]
    try:
        return read(path, mapping.limits.max_workbook_rows, mapping.limits.max_workbook_bytes)
    except TooManyCells as exc:
        raise ExtractError(f"{path.name}: refused as a damaged or hostile workbook ({kind.described}): {exc}") from None
    except TooManyRows as exc:
        raise ExtractError(
            f"{path.name}: the workbook holds more than {mapping.limits.max_workbook_rows:,} rows "
            f"(counted {exc.args[0]:,} before stopping), over limits.max_workbook_rows; "
            "split the extract or raise the limit in the mapping"
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise ExtractError(
            f"{path.name}: line {line}, column {column + 1}: not well-formed XML ({kind.described}): {exc}"
        ) from None


MARKUP_READERS = ("html", "spreadsheetml2003")
SUFFIX_OF_KIND = {"xlsx": ".xlsx", "xls": ".xls"}
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def count_xlsx_rows(path: Path, sheet_name: str, header_row: int) -> int | None:
    """Rows below the header that hold any value, counted straight from the sheet's
    XML, independently of the reader (and of the sheet's declared dimension).
    None when the file is not a zip of XML (legacy XLS)."""
    import xml.etree.ElementTree as ElementTree
    import zipfile

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return None
    with archive:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        sheet = next(s for s in workbook.iter(f"{_MAIN}sheet") if s.get("name") == sheet_name)
        target = next(r.get("Target") for r in relations if r.get("Id") == sheet.get(f"{_REL}id"))
        member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        count, position = 0, 0
        with archive.open(member) as stream:
            for _event, element in ElementTree.iterparse(stream):
                if element.tag != f"{_MAIN}row":
                    continue
                position = int(element.get("r") or position + 1)
                has_value = any(
                    (value.text or "").strip()
                    for cell in element.iter(f"{_MAIN}c")
                    for value in (*cell.iter(f"{_MAIN}v"), *cell.iter(f"{_MAIN}t"))
                )
                if position > header_row and has_value:
                    count += 1
                element.clear()
        return count


def count_xls_rows(path: Path, sheet_name: str, header_row: int) -> int:
    """The same count for a legacy XLS (BIFF) workbook, read by xlrd rather than
    by the reader that parses the data."""
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except xlrd.XLRDError as exc:
        raise ExtractError(f"{path.name}: not a readable XLS workbook ({exc})") from exc
    sheet = book.sheet_by_name(sheet_name)
    return sum(
        1 for index in range(header_row, sheet.nrows) if any(str(value).strip() for value in sheet.row_values(index))
    )


def _check_workbook_limits(path: Path, mapping: SourceMapping) -> None:
    """Refuse a workbook over the mapping's limits before the reader loads it whole."""
    try:
        check_workbook(path, mapping.limits, path.name)
    except WorkbookTooLarge as exc:
        raise ExtractError(str(exc)) from exc
    except Exception as exc:  # a damaged zip: the same answer the reader would give
        raise ExtractError(f"{path.name}: not a readable workbook ({type(exc).__name__}: {exc})") from exc


def _find_sheet_header(
    path: Path, sheets: list[tuple[str, list[list[object]]]], mapping: SourceMapping
) -> tuple[str, list[list[object]], int]:
    """The mapped sheet (or the first holding the header), its rows, and its header row's index."""
    if isinstance(mapping.sheet, int):
        if mapping.sheet >= len(sheets):
            raise ExtractError(f"{path.name}: sheet index {mapping.sheet} but the workbook has {len(sheets)}")
        candidates = [sheets[mapping.sheet]]
    elif isinstance(mapping.sheet, str):
        candidates = [s for s in sheets if s[0] == mapping.sheet]
        if not candidates:
            raise ExtractError(f"{path.name}: no sheet named {mapping.sheet!r}; sheets: {[s[0] for s in sheets]}")
    else:
        candidates = sheets
    error: ExtractError | None = None
    for title, rows in candidates:
        try:
            return title, rows, find_header(rows[:HEADER_SEARCH_ROWS], mapping, f"{path.name} [{title}]")
        except ExtractError as exc:
            error = error or exc
    raise error or ExtractError(f"{path.name}: the workbook has no sheets")


# --- Excel serial dates ---------------------------------------------------------------
# A date cell without a date format reaches the reader as its serial number
# (46082.375 is 2026-03-01 09:00): days since the workbook's epoch. In the 1900
# system (Windows) day 60 is 1900-02-29, which never was (Lotus's leap-year bug);
# the 1904 system (old Mac workbooks, the workbook's date1904 flag) counts from 1904-01-01.
# The last serial taken for a date: 2199-12-31. Excel's own limit (9999) would read a
# year-month written as a number (202503) as the year 2454.
LAST_SERIAL = 109_574


def serial_date(value: object, date1904: bool) -> object:
    """`value` as a datetime when it is a number that can be a serial date, else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= LAST_SERIAL + 1:
        return value
    if date1904:
        epoch = dt.datetime(1904, 1, 1)
    elif value < 60:
        epoch = dt.datetime(1899, 12, 31)
    elif value < 61:
        return value  # 1900-02-29: left as the number, which the date column then refuses
    else:
        epoch = dt.datetime(1899, 12, 30)
    return epoch + dt.timedelta(seconds=round(value * 86_400))


def _collapsed(filled: list[str]) -> list[str]:
    """The row's filled cells with a run of one repeated text (a merged cell's) kept once."""
    return [text for i, text in enumerate(filled) if i == 0 or text != filled[i - 1]]


def _date_columns(header: list[str], mapping: SourceMapping) -> set[int]:
    """Indexes of the header's columns mapped to canonical dates or timestamps."""
    typed = {c.name: c.type for c in mapping.table.columns}
    dated = {
        _normalise_header(h)
        for name, headers in mapping.columns.items()
        if typed.get(name) in ("date", "timestamp")
        for h in (headers if isinstance(headers, list) else [headers])
    }
    return {i for i, h in enumerate(header) if h in dated}


def uses_1904_dates(path: Path, kind: FileKind) -> bool:
    """The workbook's own date1904 flag (XLSX workbookPr, XLS datemode, SpreadsheetML <Date1904/>)."""
    if kind.name == "xlsx":
        import xml.etree.ElementTree as ElementTree
        import zipfile

        with zipfile.ZipFile(path) as archive:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        flag = next((e.get("date1904") for e in workbook.iter(f"{_MAIN}workbookPr")), None)
        return (flag or "").lower() in ("1", "true")
    if kind.name == "xls":
        import xlrd

        try:
            return xlrd.open_workbook(str(path), on_demand=True).datemode == 1
        except xlrd.XLRDError:
            return False  # a .et xlrd cannot open: calamine's dates stand
    if kind.name == "spreadsheetml2003":
        with path.open("rb") as handle:
            return b"Date1904" in handle.read(1 << 16)  # <Date1904/>, or prefixed <x:Date1904/>
    return False


def read_spreadsheet(con: duckdb.DuckDBPyConnection, path: Path, mapping: SourceMapping, kind: FileKind) -> ReadResult:
    _check_workbook_limits(path, mapping)
    title, rows, header_index = _find_sheet_header(path, _sheet_rows(path, kind, mapping), mapping)
    header = [_normalise_header(h) for h in rows[header_index]]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:  # as in a CSV: which of the columns would a mapped header mean?
        raise ExtractError(
            f"{path.name} [{title}]: row {header_index + 1}: repeated column headers {repeated} "
            "(a header merged over several columns is repeated in each)"
        )
    notes = re.compile(mapping.notes_pattern)
    lines, raws, values = [], [], [[] for _ in header]
    notes_rows = 0
    in_notes = False
    dated = _date_columns(header, mapping)
    date1904 = bool(dated) and uses_1904_dates(path, kind)
    for offset, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        if dated:
            row = [serial_date(v, date1904) if i in dated else v for i, v in enumerate(row)]
        texts = [_cell_text(v) for v in row]
        filled = [t for t in texts if t is not None and t.strip()]
        if not filled:
            continue
        # A note merged across the row (its text in every covered cell) is one note.
        in_notes = is_notes(_collapsed(filled), notes, in_notes)
        if in_notes:
            notes_rows += 1
            continue
        lines.append(offset)
        raws.append("\t".join(t or "" for t in texts).rstrip("\t"))
        for i in range(len(header)):
            values[i].append(texts[i] if i < len(texts) else None)
    table = pa.table(
        {"_line": pa.array(lines, pa.int64()), "_raw": pa.array(raws, pa.string())}
        | {h or f"column{i + 1}": pa.array(values[i], pa.string()) for i, h in enumerate(header)}
    )
    con.register("extract_arrow", table)
    con.execute("create or replace table extract_rows as select * from extract_arrow")
    con.execute("create or replace view extract_raw as select _line, _raw from extract_rows")
    con.unregister("extract_arrow")
    con.execute("create or replace table extract_rejects (_line bigint, _raw varchar, reason varchar)")
    if kind.name in MARKUP_READERS:  # parsed by govperf's own reader: counted from its rows
        counted = sum(1 for row in rows[header_index + 1 :] if any((_cell_text(v) or "").strip() for v in row))
    elif (counted := count_xlsx_rows(path, title, header_index + 1)) is None:
        counted = count_xls_rows(path, title, header_index + 1)
    rows_read = counted - notes_rows
    return ReadResult(
        encoding=None,
        header_line=header_index + 1,
        rows_read=rows_read,
        notes_rows=notes_rows,
        title_lines=[_title_text([_cell_text(v) for v in row]) for row in rows[:header_index]],
    )
