"""Workbooks written as markup, as government systems often save an ".xls": an HTML
table, or an Excel 2003 XML workbook (SpreadsheetML).

Each is read into the sheets of rows the workbook reader gives for XLSX and XLS
(every <table>, or every <Worksheet>, a sheet), so everything after reading is the
same. A cell spanning rows or columns (rowspan/colspan; ss:MergeAcross/MergeDown)
gives its value to every cell it covers, as a merged label means. Bounded like any
workbook: the file's size by limits.max_workbook_bytes (checked before this), its
rows by limits.max_workbook_rows while parsing. Cells hold text, except
SpreadsheetML's typed Number and DateTime, kept as such for the shared cell rules.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

Sheets = list[tuple[str, list[list[object]]]]

SS = "{urn:schemas-microsoft-com:office:spreadsheet}"
MAX_SPAN = 1000  # a colspan or rowspan beyond it is taken as this (a hostile span cannot blow up a row)
MAX_COLUMNS = 16_384  # Excel's own width: a cell placed further right refuses the file
# Cells a span may make without markup of their own: a budget of one cell per this many
# bytes of the mapping's max_workbook_bytes (8 M cells, about 64 MB of row lists, by default).
BYTES_PER_CELL = 16
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_SPACE = re.compile(r"\s+")


class TooManyRows(Exception):
    """The workbook holds more rows than the mapping's limit."""


class TooManyCells(Exception):
    """Spans or indexes would make more cells (or wider rows) than a workbook may hold."""


class _CellBudget:
    def __init__(self, max_cells: int) -> None:
        self.left = max_cells

    def take(self, row: list[object]) -> None:
        if len(row) > MAX_COLUMNS:
            raise TooManyCells(f"a row {len(row):,} cells wide, over {MAX_COLUMNS:,} columns")
        self.left -= len(row)
        if self.left < 0:
            raise TooManyCells("its spans make more cells than limits.max_workbook_bytes allows")


class _Spans:
    """Values that cells above carry down into the rows below (rowspan, MergeDown).
    Each row takes a carried value once, whether a cell of its own sits there or not."""

    def __init__(self) -> None:
        self.down: dict[int, list] = {}  # column -> [rows left, value]
        self.used: set[int] = set()  # columns this row took a carried value from

    def start(self, column: int, rows_below: int, value: object) -> None:
        if rows_below > 0:
            self.down[column] = [rows_below, value]

    def _take(self, column: int) -> object:
        carried = self.down.get(column)
        if carried is None:
            return None
        self.used.add(column)
        return carried[1]

    def fill_to(self, row: list[object], column: int) -> None:
        """The row's columns up to `column` (not included): carried values where a span
        covers them, else empty."""
        while len(row) < column:
            row.append(self._take(len(row)))

    def fill_covered(self, row: list[object]) -> None:
        """The columns at the row's end that spans cover: the next cell goes after them."""
        while len(row) in self.down:
            row.append(self._take(len(row)))

    def end_row(self, row: list[object]) -> None:
        """Every column a span still covers, empty ones between; each span then has
        one row fewer to go."""
        if self.down:
            self.fill_to(row, max(self.down) + 1)
        for column in list(self.down):
            if column in self.used or column >= len(row):
                self.down[column][0] -= 1
                if self.down[column][0] <= 0:
                    del self.down[column]
        self.used = set()


def _span(value: str | None) -> int:
    try:
        return min(max(int(str(value).strip()), 1), MAX_SPAN)
    except (TypeError, ValueError):
        return 1


# ------------------------------------------------------------------ HTML


def decode_html(raw: bytes) -> str:
    """The page's text: by its byte-order mark, else its declared charset (GBK and
    GB2312 read as GB18030, their superset), else UTF-8, else GB18030."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            return raw[len(bom) :].decode(codec, errors="replace")
    declared = _CHARSET.search(raw[:4096])
    if declared:
        name = declared.group(1).decode("ascii").lower()
        if name in ("gb2312", "gbk", "gb18030", "cp936", "x-gbk"):
            name = "gb18030"
        try:
            return raw.decode(name)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


class _HtmlTables(HTMLParser):
    """Every top-level <table> as rows of cell text; a table inside a cell is read as
    that cell's text."""

    def __init__(self, max_rows: int, max_cells: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_rows = max_rows
        self.cells = _CellBudget(max_cells)
        self.rows_seen = 0
        self.tables: list[list[list[object]]] = []
        self.depth = 0
        self.row: list[object] | None = None
        self.cell: list[str] | None = None
        self.cell_spans = (1, 1)
        self.spans = _Spans()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.depth += 1
            if self.depth == 1:
                self.tables.append([])
                self.spans = _Spans()
            return
        if self.depth != 1:
            if tag == "br" and self.cell is not None:
                self.cell.append(" ")
            return
        if tag == "tr":
            self._end_row()
            self.row = []
        elif tag in ("td", "th"):
            self._end_cell()
            if self.row is None:
                self.row = []
            found = dict(attrs)
            self.cell = []
            self.cell_spans = (_span(found.get("colspan")), _span(found.get("rowspan")))
        elif tag == "br" and self.cell is not None:
            self.cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            if self.depth == 1:
                self._end_row()
            self.depth = max(self.depth - 1, 0)
        elif self.depth == 1 and tag in ("td", "th"):
            self._end_cell()
        elif self.depth == 1 and tag == "tr":
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def _end_cell(self) -> None:
        if self.cell is None or self.row is None:
            return
        text = _SPACE.sub(" ", "".join(self.cell)).strip() or None
        across, down = self.cell_spans
        self.spans.fill_covered(self.row)
        for _ in range(across):
            self.spans.start(len(self.row), down - 1, text)
            self.row.append(text)
        if len(self.row) > MAX_COLUMNS:
            raise TooManyCells(f"a row {len(self.row):,} cells wide, over {MAX_COLUMNS:,} columns")
        self.cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self.row is None:
            return
        self.spans.end_row(self.row)
        self.cells.take(self.row)
        self.rows_seen += 1
        if self.rows_seen > self.max_rows:
            raise TooManyRows(self.rows_seen)
        self.tables[-1].append(self.row)
        self.row = None


def html_sheets(path: Path, max_rows: int, max_bytes: int) -> Sheets:
    parser = _HtmlTables(max_rows, max_bytes // BYTES_PER_CELL)
    parser.feed(decode_html(path.read_bytes()))
    parser.close()
    parser._end_row()
    return [(f"table {n}", rows) for n, rows in enumerate(parser.tables, start=1)]


# ------------------------------------------------------------------ SpreadsheetML


def _typed(text: str | None, kind: str | None) -> object:
    if text is None:
        return None
    if kind == "Number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "DateTime":
        try:
            return dt.datetime.fromisoformat(text.rstrip("Z")[:26])
        except ValueError:
            return text
    return text


def _index(value: str, file_row_or_column: str) -> int:
    """An ss:Index: 1-based, a whole number."""
    try:
        index = int(value.strip())
    except ValueError:
        raise TooManyCells(f"ss:Index {value!r} of a {file_row_or_column} is not a whole number") from None
    if index < 1:
        raise TooManyCells(f"ss:Index {index} of a {file_row_or_column} is below 1")
    return index


def spreadsheetml_sheets(path: Path, max_rows: int, max_bytes: int) -> Sheets:
    import xml.etree.ElementTree as ElementTree

    sheets: Sheets = []
    rows: list[list[object]] = []
    spans = _Spans()
    name = ""
    seen = 0
    cells = _CellBudget(max_bytes // BYTES_PER_CELL)

    def keep(row: list[object]) -> None:
        """A finished row (read, or skipped by ss:Index): spans carried in, counted."""
        nonlocal seen
        spans.end_row(row)
        cells.take(row)
        rows.append(row)
        seen += 1
        if seen > max_rows:
            raise TooManyRows(seen)

    for event, element in ElementTree.iterparse(path, events=("start", "end")):
        if event == "start":
            if element.tag == f"{SS}Worksheet":
                name = element.get(f"{SS}Name") or f"Sheet{len(sheets) + 1}"
                rows, spans = [], _Spans()
            continue
        if element.tag == f"{SS}Row":
            index = element.get(f"{SS}Index")
            position = _index(index, "row") if index else len(rows) + 1
            while len(rows) < position - 1:  # rows the file skipped: what spans carry
                keep([])
            row: list[object] = []
            for cell in element.iter(f"{SS}Cell"):
                column = cell.get(f"{SS}Index")
                if column:
                    place = _index(column, "cell")
                    if place > MAX_COLUMNS:
                        raise TooManyCells(f"a cell at column {place:,}, over {MAX_COLUMNS:,} columns")
                    spans.fill_to(row, place - 1)
                spans.fill_covered(row)
                data = cell.find(f"{SS}Data")
                value = None if data is None else _typed("".join(data.itertext()), data.get(f"{SS}Type"))
                down = min(int(cell.get(f"{SS}MergeDown") or 0), MAX_SPAN)
                for _ in range(min(int(cell.get(f"{SS}MergeAcross") or 0), MAX_SPAN) + 1):
                    spans.start(len(row), down, value)
                    row.append(value)
            keep(row)
            element.clear()
        elif element.tag == f"{SS}Worksheet":
            sheets.append((name, rows))
            element.clear()
    return sheets
