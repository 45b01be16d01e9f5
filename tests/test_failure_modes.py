"""A corpus of distinct ways a departmental extract goes wrong, each with what
govperf must do: quarantine the row with a reason a person can act on, refuse the
file with a message naming it, or accept a messy but meaningful value. Every case
also checks that nothing is lost: rows read = accepted + quarantined.

One mode per entry; variants of a mode are not counted twice.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from tests.test_ingest_landing import GOOD, HEADER, _land

# (mode, lines after the header (or the whole text when it starts with "!"), expected)
# expected: ("quarantine", reason fragment) | ("error", message fragment) | ("accept", None)
ROW_MODES = [
    ("unknown department", GOOD.replace("D001", "D999"), ("quarantine", "未知部门")),
    ("rating not one of the five levels", GOOD.replace(",满意,", ",很好,"), ("quarantine", "很好")),
    ("rating out of range as a number", GOOD.replace(",满意,", ",6,"), ("quarantine", "1-5")),
    (
        "completed before received",
        GOOD.replace("2025-03-04 10:00:00", "2025-03-01 10:00:00"),
        ("quarantine", "办结时间早于受理时间"),
    ),
    ("ragged row: too few fields", "SX9,D001,短行", ("quarantine", "列数")),
    ("ragged row: too many fields", GOOD + ",多余,字段", ("quarantine", "列数")),
    ("truncated last line without a newline", "!" + "{header}\r\n{good}\r\nSX9,D001,市政务", ("quarantine", "列数")),
    ("unknown channel", GOOD.replace(",网办,", ",邮寄,"), ("quarantine", "邮寄")),
    ("unparseable timestamp", GOOD.replace("2025-03-03 09:00:00", "上周三上午"), ("quarantine", "上周三上午")),
    ("negative time limit", GOOD.replace(",5,4,3,", ",-5,4,3,"), ("quarantine", "承诺时限为负数")),
    ("time limit not a number", GOOD.replace(",5,4,3,", ",五天,4,3,"), ("quarantine", "五天")),
    ("materials submitted above required", GOOD.replace(",5,4,3,", ",5,3,4,"), ("quarantine", "实交材料数")),
    ("missing required value", GOOD.replace("营业执照设立登记", ""), ("quarantine", "事项名称")),
    (
        "NUL byte inside a field",
        GOOD.replace("营业执照设立登记", "营业执照\x00设立登记"),
        ("quarantine", "NUL byte in column 事项名称"),
    ),
    ("embedded newline in a quoted comment", GOOD.replace(",满意,,", ',满意,"第一行\n第二行",'), ("accept", None)),
    ("huge free-text field", GOOD.replace(",满意,,", ",满意," + "很" * 200_000 + ","), ("accept", None)),
    ("formula text in a comment", GOOD.replace(",满意,,", ",满意,=cmd|' /C calc'!A0,"), ("accept", None)),
    ("HTML in a comment", GOOD.replace(",满意,,", ",满意,<script>alert(1)</script>,"), ("accept", None)),
    (
        "future date",
        GOOD.replace("2025-03-03 09:00:00", "2031-03-03 09:00:00").replace("2025-03-04", "2031-03-04"),
        ("quarantine", "未来日期"),
    ),
    ("full-width digits and a unit", GOOD.replace(",5,4,3,", ",５个工作日,４,３,"), ("accept", None)),
    ("Chinese date format", GOOD.replace("2025-03-03 09:00:00", "2025/3/3 09:00"), ("accept", None)),
    ("placeholder for a missing value", GOOD.replace(",4,3,", ",—,无,"), ("accept", None)),
    (
        "Chinese date and time in 时 and 分",
        GOOD.replace("2025-03-03 09:00:00", "2025年3月3日 9时00分"),
        ("accept", None),
    ),
    ("compact date and time", GOOD.replace("2025-03-03 09:00:00", "20250303 090000"), ("accept", None)),
    ("ISO 8601 with T and a zone", GOOD.replace("2025-03-03 09:00:00", "2025-03-03T01:00:00Z"), ("accept", None)),
    (
        "day and month in an order only the mapping can say",
        GOOD.replace("2025-03-03 09:00:00", "03/03/2025 09:00"),
        ("quarantine", "日、月次序不明"),
    ),
]

FILE_MODES = [
    ("empty file", "", ("error", "empty")),
    ("header-only file", "!{header}\r\n", ("error", "")),
    ("missing required column", "!办件编号,部门编码\r\nSX1,D001\r\n", ("error", "missing columns")),
    ("not this extract at all", "!a,b,c\r\n1,2,3\r\n", ("error", "missing columns")),
]


def _text(lines: str) -> str:
    if lines.startswith("!"):
        return lines[1:].format(header=HEADER, good=GOOD)
    return f"{HEADER}\r\n{lines}\r\n"


@pytest.mark.parametrize(("mode", "lines", "expected"), ROW_MODES, ids=[m[0] for m in ROW_MODES])
def test_row_failure_modes(tmp_path: Path, mode: str, lines: str, expected: tuple[str, str | None]) -> None:
    landing, quarantine = _land(tmp_path, _text(lines), encoding="gb18030")
    assert landing.file_error is None, landing.file_error
    assert landing.rows_read == landing.rows_accepted + landing.rows_quarantined
    kind, fragment = expected
    if kind == "quarantine":
        assert quarantine, f"{mode}: nothing quarantined"
        line, raw_text, reason = quarantine[-1]
        assert fragment in reason, reason
        assert line >= 2 and raw_text
    else:
        assert quarantine == [], quarantine
        assert landing.rows_accepted >= 1


@pytest.mark.parametrize(("mode", "text", "expected"), FILE_MODES, ids=[m[0] for m in FILE_MODES])
def test_file_failure_modes(tmp_path: Path, mode: str, text: str, expected: tuple[str, str]) -> None:
    landing, _ = _land(tmp_path, _text(text) if text else "")
    assert landing.file_error is not None, f"{mode}: the file was not refused"
    assert expected[1] in landing.file_error and "好差评明细_202503.csv" in landing.file_error


def test_duplicate_rows_with_block_are_left_for_the_gate(tmp_path: Path) -> None:
    """`duplicates: {identical: block}`: the same case twice lands (nothing is dropped
    silently), and the quality suite's uniqueness expectation (severity error) then
    blocks the month, as before duplicates were quarantined by default."""
    from pipelines.checks.suites import load_suites
    from pipelines.settings import QUALITY_DIR
    from tests.test_ingest_landing import _land_with

    text = f"{HEADER}\r\n{GOOD}\r\n{GOOD}\r\n"
    landing, _ = _land_with(tmp_path, text.encode("gbk"), {"duplicates": {"identical": "block"}})
    assert landing.rows_accepted == 2
    suite = load_suites(QUALITY_DIR)["service_transactions"]
    unique = [e for e in suite.expectations if e.type == "expect_column_values_to_be_unique"]
    assert unique and unique[0].severity == "error"
    ids = duckdb.sql(f"select case_id from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert ids == [("SX1",), ("SX1",)]


OTHER = GOOD.replace("SX1,", "SX2,")
CHANGED = GOOD.replace(",满意,", ",基本满意,")  # SX1 again, rated otherwise
# (mode, data lines, the mapping's duplicates, expected (line, reason fragment) quarantined, case ids accepted)
DUPLICATE_MODES = [
    (
        "identical copies of a row",
        [GOOD, OTHER, GOOD, " " + GOOD],  # the last differs only by a space the cleaning trims
        {},
        [(4, "与第 2 行重复 (duplicate of line 2)"), (5, "与第 2 行重复")],
        ["SX1", "SX2"],
    ),
    (
        "the same case with other content",
        [GOOD, OTHER, CHANGED],
        {},
        [(2, "与第 4 行冲突：同一办件编号内容不同"), (4, "与第 2 行冲突")],
        ["SX2"],
    ),
    (
        "the later line of a case wins when the mapping says so",
        [GOOD, CHANGED, OTHER],
        {"conflicts": "later_wins"},
        [(2, "以同一键较后的第 3 行为准 (superseded by line 3")],
        ["SX1", "SX2"],
    ),
    (
        "a duplicate key named in the mapping",
        [GOOD, OTHER.replace("D001", "D001")],
        {"key": ["department_id"]},
        None,
        [],
    ),
]


@pytest.mark.parametrize(
    ("mode", "lines", "rules", "quarantined", "accepted"), DUPLICATE_MODES, ids=[m[0] for m in DUPLICATE_MODES]
)
def test_rows_repeated_in_a_file_are_quarantined_and_the_rest_of_the_month_goes_on(
    tmp_path: Path, mode: str, lines: list[str], rules: dict, quarantined, accepted: list[str]
) -> None:
    from tests.test_ingest_landing import _land_with

    text = HEADER + "\r\n" + "\r\n".join(lines) + "\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), {"duplicates": rules})
    assert landing.file_error is None and landing.rows_read == landing.rows_accepted + landing.rows_quarantined
    if quarantined is None:  # SX1 and SX2 share department D001: a conflict on that key
        assert [line for line, _raw, _reason in quarantine] == [2, 3]
        assert all("同一部门编码内容不同" in reason for _line, _raw, reason in quarantine)
        return
    assert [(line, fragment in reason) for (line, _raw, reason), (_l, fragment) in zip(quarantine, quarantined)] == [
        (line, True) for line, _fragment in quarantined
    ], quarantine
    assert len(quarantine) == len(quarantined)
    ids = duckdb.sql(f"select case_id from '{tmp_path}/lake/service_transactions/*/*.parquet' order by 1").fetchall()
    assert [i for (i,) in ids] == accepted


# What a file really is, whatever its name and mapping say (pipelines/ingest/sniff.py).
# (mode, file name, the mapping's format, the file's bytes, expected file_format,
#  the refusal's fragment or None when the file is read)


def _xlsx_bytes() -> bytes:
    import io

    from openpyxl import Workbook

    workbook = Workbook()
    for row in (HEADER.split(","), GOOD.split(",")):
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _docx_bytes() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def _html_table(rows: list[str], charset: str = "gb2312") -> bytes:
    cells = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row.split(",")) + "</tr>\n" for row in rows)
    page = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}"></head>'
    return (page + f"<body><table border=1>\n{cells}</table></body></html>").encode("gb18030")


def _spreadsheetml(rows: list[str]) -> bytes:
    def cell(value: str) -> str:
        return f'<Cell><Data ss:Type="String">{value}</Data></Cell>' if value else "<Cell/>"

    body = "".join("<Row>" + "".join(cell(v) for v in row.split(",")) + "</Row>\n" for row in rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">'
        f'<Worksheet ss:Name="明细"><Table>{body}</Table></Worksheet></Workbook>'
    ).encode()


SECOND = GOOD.replace("SX1,", "SX2,").replace(",满意,", ",基本满意,")
KIND_MODES = [
    ("a workbook named .csv", "好差评明细_202503.csv", "csv", _xlsx_bytes, "xlsx", "an XLSX workbook"),
    ("a PDF named .csv", "好差评明细_202503.csv", "csv", lambda: b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n", "pdf", "a PDF"),
    ("binary bytes named .csv", "好差评明细_202503.csv", "csv", lambda: b"\x00\x01\x02" * 400, "binary", "binary"),
    (
        "a text file under a workbook mapping",
        "好差评明细_202503.xls",
        "xls",
        lambda: f"{HEADER}\r\n{GOOD}\r\n".encode("gbk"),
        "csv",
        "a text file",
    ),
    ("a Word document named .xlsx", "好差评明细_202503.xlsx", "xlsx", _docx_bytes, "docx", "a Word document"),
    (
        "an HTML table saved as .xls",
        "好差评明细_202503.xls",
        "xls",
        lambda: _html_table([HEADER, GOOD, SECOND]),
        "html",
        None,
    ),
    (
        "an Excel 2003 XML workbook saved as .xls",
        "好差评明细_202503.xls",
        "xls",
        lambda: _spreadsheetml([HEADER, GOOD, SECOND]),
        "spreadsheetml2003",
        None,
    ),
    ("an XLSX container under an xls mapping", "好差评明细_202503.xls", "xls", _xlsx_bytes, "xlsx", None),
]


@pytest.mark.parametrize(
    ("mode", "name", "mapping_format", "content", "file_format", "refusal"), KIND_MODES, ids=[m[0] for m in KIND_MODES]
)
def test_a_file_is_read_as_what_it_is_and_refused_whole_when_its_mapping_says_otherwise(
    tmp_path: Path, mode: str, name: str, mapping_format: str, content, file_format: str, refusal: str | None
) -> None:
    """The kind comes from the content: a workbook of any container is read under a
    workbook mapping; a file of the other family is refused as a whole with what it
    really is, and quarantined as one row, never its bytes as lines (a workbook under
    a CSV mapping once put hundreds of lines of binary junk into quarantine)."""
    from tests.test_ingest_landing import _land_as

    landing, quarantine = _land_as(tmp_path, content(), name, mapping_format)
    assert landing.file_format == file_format
    assert landing.rows_read == landing.rows_accepted + landing.rows_quarantined
    if refusal is None:
        assert landing.file_error is None, landing.file_error
        assert landing.rows_accepted == (2 if "XLSX" not in mode else 1) and quarantine == []
    else:
        assert landing.file_error is not None and refusal in landing.file_error, landing.file_error
        assert name in landing.file_error and f"declares format {mapping_format}" in landing.file_error
        assert landing.rows_read == 1 and len(quarantine) == 1


def test_a_label_spanning_rows_in_an_html_table_reaches_every_row_it_covers(tmp_path: Path) -> None:
    """rowspan (a department written once beside its cases) and colspan (a title across
    the table) give their value to every cell they cover."""
    from tests.test_ingest_landing import _land_as

    head = HEADER.split(",")
    first, second = GOOD.split(","), SECOND.split(",")
    cells = [f"<td>{v}</td>" for v in first]
    cells[1] = f'<td rowspan="2">{first[1]}</td>'
    rest = [f"<td>{v}</td>" for i, v in enumerate(second) if i != 1]
    page = (
        '<html><head><meta charset="utf-8"></head><body><table>'
        f'<tr><th colspan="{len(head)}">好差评明细（2025年3月）</th></tr>'
        "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
        "<tr>" + "".join(cells) + "</tr><tr>" + "".join(rest) + "</tr></table></body></html>"
    )
    landing, quarantine = _land_as(tmp_path, page.encode(), "好差评明细_202503.xls", "xls")
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    assert (landing.rows_read, landing.rows_accepted, landing.header_line) == (2, 2, 2)
    names = duckdb.sql(
        f"select department_id from '{tmp_path}/lake/service_transactions/*/*.parquet' order by case_id"
    ).fetchall()
    assert names == [(first[1],), (first[1],)]


# Fields split at another character than the comma (pipelines/ingest/csv_scan.py DELIMITERS).
# (mode, the file's delimiter, the mapping's `delimiter`, expected file_format or the refusal's fragments)
DELIMITER_MODES = [
    ("a tab-delimited export", "\t", "auto", "csv/tab"),
    ("a semicolon-delimited export", ";", "auto", "csv/semicolon"),
    ("a pipe-delimited export", "|", "auto", "csv/pipe"),
    ("the delimiter named in the mapping", ";", "semicolon", "csv/semicolon"),
    ("a mapping's delimiter the file does not use", ";", "tab", ["splitting fields at tab (the mapping's delimiter)"]),
]


@pytest.mark.parametrize(
    ("mode", "delimiter", "declared", "expected"), DELIMITER_MODES, ids=[m[0] for m in DELIMITER_MODES]
)
def test_fields_are_split_at_the_delimiter_found_or_declared(
    tmp_path: Path, mode: str, delimiter: str, declared: str, expected
) -> None:
    """A tab-delimited export was refused with "missing columns" listing all of them.
    The delimiter is found from the header (or taken from the mapping); quoted fields
    holding the delimiter and a newline, ragged rows and the raw text of a quarantined
    row work as with commas."""
    from tests.test_ingest_landing import _land_with

    comment = f'"含{delimiter}分隔符""引号""\n第二行"'
    good = GOOD.replace(",满意,,", f",满意,{comment},").replace(",", delimiter)
    ragged = delimiter.join(["SX9", "D001", "短行"])
    text = f"{HEADER.replace(',', delimiter)}\r\n{good}\r\n{ragged}\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), {"delimiter": declared})
    if isinstance(expected, list):
        assert landing.file_error is not None and all(f in landing.file_error for f in expected), landing.file_error
        assert "header_row auto" in landing.file_error
        return
    assert landing.file_error is None, landing.file_error
    assert landing.file_format == expected
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (2, 1, 1)
    line, raw_text, reason = quarantine[0]
    assert (line, raw_text) == (4, ragged) and "列数" in reason
    comments = duckdb.sql(f"select comment from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert comments == [(f'含{delimiter}分隔符"引号"\n第二行',)]


def test_a_header_found_with_no_delimiter_names_every_one_tried(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_with

    landing, _ = _land_with(tmp_path, "办件编号 部门编码\r\nSX1 D001\r\n".encode("gbk"), {})
    assert landing.file_error is not None
    assert "splitting fields at comma, tab, semicolon, pipe (delimiter auto" in landing.file_error
    assert "in the first 2 rows (header_row auto)" in landing.file_error


def test_the_corpus_has_at_least_45_distinct_modes() -> None:
    modes = (
        [m[0] for m in ROW_MODES]
        + [m[0] for m in FILE_MODES]
        + [m[0] for m in KIND_MODES]
        + [m[0] for m in DELIMITER_MODES]
        + [
            "duplicate rows",
            "wrong encoding",
            "duplicate file",
            "a label spanning rows",
            "no delimiter finds the header",
            # tests/test_case_rules.py
            "a channel the extract does not know",
            "a request that is not a case",
            "a closed status without a close time",
        ]
    )
    assert len(set(modes)) == len(modes) >= 45


def _serial(moment: str, epoch: dt.datetime) -> float:
    return (dt.datetime.fromisoformat(moment) - epoch).total_seconds() / 86_400


WINDOWS_EPOCH, MAC_EPOCH = dt.datetime(1899, 12, 30), dt.datetime(1904, 1, 1)


def _workbook_with_serials(kind: str, date1904: bool) -> bytes:
    """The extract as an XLSX or XLS whose date cells are bare numbers, in the
    workbook's own date system."""
    import io

    epoch = MAC_EPOCH if date1904 else WINDOWS_EPOCH
    rows = [HEADER.split(","), GOOD.split(",")]
    for index in (5, 6):  # 受理时间, 办结时间
        rows[1][index] = _serial(rows[1][index], epoch)
    buffer = io.BytesIO()
    if kind == "xlsx":
        from openpyxl import Workbook
        from openpyxl.utils.datetime import CALENDAR_MAC_1904

        workbook = Workbook()
        if date1904:
            workbook.epoch = CALENDAR_MAC_1904
        for row in rows:
            workbook.active.append(row)
        workbook.save(buffer)
    else:
        import xlwt

        workbook = xlwt.Workbook()
        workbook.dates_1904 = date1904
        sheet = workbook.add_sheet("明细")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
        workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
@pytest.mark.parametrize("date1904", [False, True], ids=["1900 system", "1904 system"])
def test_excel_serial_numbers_in_date_columns_are_read_by_the_workbooks_own_date_system(
    tmp_path: Path, kind: str, date1904: bool
) -> None:
    """A workbook whose date cells are numbers (46082.375) had every row quarantined."""
    from tests.test_ingest_landing import _land_as

    landing, quarantine = _land_as(tmp_path, _workbook_with_serials(kind, date1904), f"好差评明细_202503.{kind}", kind)
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    times = duckdb.sql(
        f"select received_at, completed_at from '{tmp_path}/lake/service_transactions/*/*.parquet'"
    ).fetchall()
    assert times == [(dt.datetime(2025, 3, 3, 9), dt.datetime(2025, 3, 4, 10))]


@pytest.mark.parametrize("declared", [False, True], ids=["not declared", "declared"])
def test_serial_numbers_in_a_csv_are_dates_only_where_the_mapping_says_so(tmp_path: Path, declared: bool) -> None:
    from tests.test_ingest_landing import _land_with

    serial = round(_serial("2025-03-03 09:00:00", WINDOWS_EPOCH), 6)
    text = f"{HEADER}\r\n{GOOD.replace('2025-03-03 09:00:00', str(serial))}\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), {"serial_dates": declared})
    if not declared:
        assert landing.rows_quarantined == 1 and str(serial) in quarantine[0][2]
        return
    assert quarantine == [], quarantine
    received = duckdb.sql(f"select received_at from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert received == [(dt.datetime(2025, 3, 3, 9),)]


def test_serial_date_rules_at_the_edges_of_the_1900_system() -> None:
    from pipelines.ingest.workbook_reader import serial_date

    assert serial_date(1.0, False) == dt.datetime(1900, 1, 1)
    assert serial_date(59.0, False) == dt.datetime(1900, 2, 28)
    assert serial_date(60.0, False) == 60.0  # 1900-02-29 never was: left for the date column to refuse
    assert serial_date(61.0, False) == dt.datetime(1900, 3, 1)
    assert serial_date(0.0, True) == 0.0 and serial_date(1.5, True) == dt.datetime(1904, 1, 2, 12)
    assert serial_date(True, False) is True and serial_date("46082", False) == "46082"


@pytest.mark.parametrize(
    ("written", "changes", "expected"),
    [
        ("2025-03-03T01:00:00Z", {}, dt.datetime(2025, 3, 3, 9)),  # UTC, to Beijing time
        ("2025-03-03T09:00:00+08:00", {}, dt.datetime(2025, 3, 3, 9)),
        ("2025-03-03 10:00:00.000+0900", {}, dt.datetime(2025, 3, 3, 9)),
        ("2025-03-03T01:00:00Z", {"timezone": "UTC"}, dt.datetime(2025, 3, 3, 1)),
        ("2025年3月3日 9时00分", {}, dt.datetime(2025, 3, 3, 9)),
        ("20250303 090000", {}, dt.datetime(2025, 3, 3, 9)),
        ("03/02/2025 09:00", {"timestamp_formats": ["%d/%m/%Y %H:%M"]}, dt.datetime(2025, 2, 3, 9)),
        ("03/02/2025 09:00", {"timestamp_formats": ["%m/%d/%Y %H:%M"]}, dt.datetime(2025, 3, 2, 9)),
    ],
)
def test_timestamps_are_read_in_the_forms_exports_use_zones_to_local_time(
    tmp_path: Path, written: str, changes: dict, expected: dt.datetime
) -> None:
    from tests.test_ingest_landing import _land_with

    row = GOOD.replace("2025-03-03 09:00:00", written).replace("2025-03-04 10:00:00", "")
    landing, quarantine = _land_with(tmp_path, f"{HEADER}\r\n{row}\r\n".encode("gbk"), changes)
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    received = duckdb.sql(f"select received_at from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert received == [(expected,)]


def test_an_unknown_time_zone_is_refused_when_the_mapping_loads() -> None:
    from pipelines.ingest.mapping import SourceMapping
    from tests.test_ingest_landing import MAPPINGS

    with pytest.raises(ValueError, match="unknown time zone 'Asia/Beijing'"):
        SourceMapping.model_validate(MAPPINGS["service_transactions"].model_dump() | {"timezone": "Asia/Beijing"})


def _merged_workbook(kind: str) -> bytes:
    """The department merged over the two rows of its cases (XLSX or XLS)."""
    import io

    rows = [HEADER.split(","), GOOD.split(","), SECOND.split(",")]
    buffer = io.BytesIO()
    if kind == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        for row in rows:
            workbook.active.append(row)
        workbook.active.merge_cells("B2:B3")  # openpyxl blanks the covered cell, as Excel does
        workbook.save(buffer)
    else:
        import xlwt

        workbook = xlwt.Workbook()
        sheet = workbook.add_sheet("明细")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if c != 1 or r == 0:
                    sheet.write(r, c, value)
        sheet.write_merge(1, 2, 1, 1, rows[1][1])
        workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_a_merged_cell_is_read_as_its_value_in_every_cell_it_covers(tmp_path: Path, kind: str) -> None:
    from tests.test_ingest_landing import _land_as

    landing, quarantine = _land_as(tmp_path, _merged_workbook(kind), f"好差评明细_202503.{kind}", kind)
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    departments = duckdb.sql(
        f"select department_id from '{tmp_path}/lake/service_transactions/*/*.parquet' order by case_id"
    ).fetchall()
    assert departments == [("D001",), ("D001",)]


@pytest.mark.parametrize("declared", [False, True], ids=["not declared", "carry_down declared"])
def test_a_label_written_once_is_carried_down_only_where_the_mapping_says(tmp_path: Path, declared: bool) -> None:
    """A department written once above the blank cells of its further cases: carried to
    them with carry_down, else those rows miss a required value."""
    from tests.test_ingest_landing import _land_with

    blank = SECOND.split(",")
    blank[1] = ""
    third = OTHER.replace("SX2,", "SX3,").split(",")
    third[1] = ""
    text = f"{HEADER}\r\n{GOOD}\r\n{','.join(blank)}\r\n{','.join(third)}\r\n"
    changes = {"carry_down": ["department_id"]} if declared else {}
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), changes)
    if not declared:
        assert [line for line, _raw, _reason in quarantine] == [3, 4]
        return
    assert quarantine == [] and landing.rows_accepted == 3
    departments = duckdb.sql(f"select distinct department_id from '{tmp_path}/lake/service_transactions/*/*.parquet'")
    assert departments.fetchall() == [("D001",)]


def test_carry_down_names_only_mapped_columns() -> None:
    from pipelines.ingest.mapping import SourceMapping
    from tests.test_ingest_landing import MAPPINGS

    with pytest.raises(ValueError, match="carry_down: 'region' is not a mapped column"):
        SourceMapping.model_validate(MAPPINGS["service_transactions"].model_dump() | {"carry_down": ["region"]})


def _aliased(columns: dict) -> dict:
    """The sample mapping's columns, each also known by an API-style field name."""
    return {name: [header, f"api_{name}"] for name, header in columns.items()}


@pytest.mark.parametrize("headers", ["display", "api", "mixed"])
def test_a_column_is_found_under_any_of_its_aliases(tmp_path: Path, headers: str) -> None:
    """Two exports of one dataset that differ only in header spelling (display headers vs
    API field names) land through one mapping."""
    from tests.test_ingest_landing import MAPPINGS, _land_with

    columns = MAPPINGS["service_transactions"].columns
    names = list(columns)
    display = HEADER.split(",")
    by_header = {header: name for name, header in columns.items()}
    api = [f"api_{by_header[h]}" if h in by_header else h for h in display]
    header = {
        "display": display,
        "api": api,
        "mixed": [a if i % 2 else d for i, (d, a) in enumerate(zip(display, api))],
    }
    text = ",".join(header[headers]) + "\r\n" + GOOD + "\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), {"columns": _aliased(columns)})
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    stored = duckdb.sql(f"select case_id, department_id from '{tmp_path}/lake/service_transactions/*/*.parquet'")
    assert stored.fetchall() == [("SX1", "D001")] and "case_id" in names


def test_a_missing_column_is_named_with_all_its_aliases(tmp_path: Path) -> None:
    from tests.test_ingest_landing import MAPPINGS, _land_with

    columns = _aliased(MAPPINGS["service_transactions"].columns)
    header = HEADER.split(",")
    text = ",".join(header[1:]) + "\r\n" + ",".join(GOOD.split(",")[1:]) + "\r\n"  # no case number at all
    landing, _ = _land_with(tmp_path, text.encode("gbk"), {"columns": columns})
    assert landing.file_error is not None and "missing columns: 办件编号/api_case_id" in landing.file_error


def _layouts(columns: dict) -> list[dict]:
    """CSV, XLSX and XLS exports of one extract, and a CSV with API field names."""
    by_api = {name: f"api_{name}" for name in columns}
    return [
        {"name": "csv", "format": "csv"},
        {"name": "workbook", "format": "xlsx"},
        {"name": "legacy", "format": "xls", "sheet": "明细"},
        {"name": "api", "format": "csv", "columns": by_api},
    ]


def _xls_bytes(rows: list[list[str]]) -> bytes:
    import io

    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("明细")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _api_csv(columns: dict) -> bytes:
    by_header = {header: name for name, header in columns.items()}
    header = [f"api_{by_header[h]}" if h in by_header else h for h in HEADER.split(",")]
    return (",".join(header) + "\r\n" + GOOD + "\r\n").encode("gbk")


@pytest.mark.parametrize(
    ("variant", "name", "layout"),
    [
        ("csv", "好差评明细_202503.csv", "csv"),
        ("xlsx", "好差评明细_202503.xlsx", "workbook"),
        ("xls", "好差评明细_202503.xls", "legacy"),
        ("api", "好差评明细_202503.csv", "api"),
    ],
)
def test_one_source_reads_its_csv_xlsx_and_xls_exports_through_its_layouts(
    tmp_path: Path, variant: str, name: str, layout: str
) -> None:
    """One mapping, several layouts: each file is read by the layout whose headers it
    holds (and whose format fits), and the file log records which."""
    from tests.test_ingest_landing import MAPPINGS, _land_with

    columns = MAPPINGS["service_transactions"].columns
    content = {
        "csv": lambda: f"{HEADER}\r\n{GOOD}\r\n".encode("gbk"),
        "xlsx": _xlsx_bytes,
        "xls": lambda: _xls_bytes([HEADER.split(","), GOOD.split(",")]),
        "api": lambda: _api_csv(columns),
    }[variant]()
    landing, quarantine = _land_with(tmp_path, content, {"layouts": _layouts(columns)}, name)
    assert landing.file_error is None and quarantine == [], (landing.file_error, quarantine)
    assert landing.layout == layout and landing.rows_accepted == 1
    stored = duckdb.sql(f"select case_id, department_id from '{tmp_path}/lake/service_transactions/*/*.parquet'")
    assert stored.fetchall() == [("SX1", "D001")]


def test_two_layouts_finding_as_many_columns_is_an_error_naming_both(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_with

    twins = [{"name": "first", "format": "csv"}, {"name": "second", "format": "csv", "encoding": "gb18030"}]
    landing, _ = _land_with(tmp_path, f"{HEADER}\r\n{GOOD}\r\n".encode("gbk"), {"layouts": twins})
    assert landing.file_error is not None
    assert "layouts 'first' and 'second' both find 15 of their columns" in landing.file_error


def test_a_file_no_layout_can_read_is_refused_naming_the_layouts(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_with

    only_text = [{"name": "comma", "format": "csv"}, {"name": "tabs", "format": "csv", "delimiter": "tab"}]
    landing, quarantine = _land_with(tmp_path, _xlsx_bytes(), {"layouts": only_text}, "好差评明细_202503.xlsx")
    assert landing.file_error is not None and "none of the source's layouts reads it" in landing.file_error
    assert "comma (csv), tabs (csv)" in landing.file_error and len(quarantine) == 1


def test_a_layout_is_validated_as_a_mapping_when_it_loads() -> None:
    from pipelines.ingest.mapping import SourceMapping
    from tests.test_ingest_landing import MAPPINGS

    base = MAPPINGS["service_transactions"].model_dump()
    with pytest.raises(ValueError, match=r"(?s)layouts\[0\] \(bad\).*format"):
        SourceMapping.model_validate(base | {"layouts": [{"name": "bad", "format": "pdf"}]})
    with pytest.raises(ValueError, match="a layout may set only .*; not file_pattern"):
        SourceMapping.model_validate(base | {"layouts": [{"name": "x", "file_pattern": "*.csv"}]})
    with pytest.raises(ValueError, match="names repeat"):
        SourceMapping.model_validate(base | {"layouts": [{"name": "a"}, {"name": "a"}]})


def test_check_config_previews_how_one_file_would_land_without_landing_it(tmp_path: Path, monkeypatch) -> None:
    """`govperf check-config --file F`: the layout, format, delimiter, encoding, header
    row, counts, first rows and the rows that would be quarantined; the home's lake
    and archive stay as they were (here: never made)."""
    from click.testing import CliRunner

    from pipelines.cli import main

    home, inbox = tmp_path / "home", tmp_path / "inbox"
    monkeypatch.setenv("GOVPERF_HOME", str(home))
    monkeypatch.setenv("GOVPERF_INBOX", str(inbox))
    monkeypatch.setenv("GOVPERF_MASKING_KEY", "a test key, not a secret")
    extract = tmp_path / "downloads" / "好差评明细_202503.txt"
    extract.parent.mkdir()
    body = [HEADER, GOOD, SECOND, "SX9,D001,短行"]
    extract.write_bytes(("\r\n".join(line.replace(",", "\t") for line in body) + "\r\n").encode("gbk"))
    result = CliRunner().invoke(main, ["check-config", "--file", str(extract), "--source", "service_transactions"])
    assert result.exit_code == 0, result.output
    said = result.output
    assert "source service_transactions, layout default, format csv, delimiter tab" in said
    assert "encoding gb18030, header row 1, period 2025-03" in said
    assert "rows read 3: 2 would be accepted, 1 quarantined" in said
    assert "case_id=SX1, department_id=D001" in said and "line 4: 列数不足" in said
    assert not (home / "lake").exists() and not (home / "archive").exists()
    unknown = CliRunner().invoke(main, ["check-config", "--file", str(extract)])
    assert (
        unknown.exit_code == 1
        and "no mapping's file_pattern matches it; name its source with --source" in unknown.output
    )


def _registry_with(extra: dict[str, dict]):
    """The sample's departments, with more aliases or codes for some of them."""
    from pipelines.reference import DepartmentRegistry
    from tests.test_ingest_landing import REGISTRY

    departments = [d.model_dump() for d in REGISTRY.departments]
    for department in departments:
        for field, values in extra.get(department["id"], {}).items():
            department[field] = department.get(field, []) + values
    return DepartmentRegistry.model_validate({"departments": departments})


def _land_registry(tmp_path: Path, rows: list[str], registry):
    from pipelines.ingest.land import land_file
    from tests.test_ingest_landing import MAPPINGS

    inbox = tmp_path / "inbox" / "service_transactions"
    inbox.mkdir(parents=True)
    path = inbox / "好差评明细_202503.csv"
    path.write_bytes((HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode("gbk"))
    landing = land_file(
        path, f"service_transactions/{path.name}", MAPPINGS["service_transactions"], registry,
        tmp_path / "lake", tmp_path / "archive",
    )  # fmt: skip
    quarantine = duckdb.sql(f"select line, reason from '{tmp_path}/lake/quarantine/*/*/*.parquet' order by line")
    accepted = duckdb.sql(
        f"select case_id, department_id from '{tmp_path}/lake/service_transactions/*/*.parquet' order by case_id"
    )
    return landing, quarantine.fetchall(), accepted.fetchall()


def _row(case: str, department: str, received: str) -> str:
    return (
        GOOD.replace("SX1,", f"{case},")
        .replace(",D001,", f",{department},")
        .replace("2025-03-03 09:00:00", received)
        .replace("2025-03-04 10:00:00", "2025-03-05 10:00:00")
    )


def test_an_old_name_or_a_code_lands_on_the_department_it_named_on_the_rows_date(tmp_path: Path) -> None:
    """One name handed on after a reorganisation (D001's until 3 March, D002's since), and
    an agency code: each row lands on the department the text named on its own date."""
    registry = _registry_with(
        {
            "D001": {"aliases": [{"name": "便民中心", "valid_to": "2025-03-02"}], "codes": ["11440300MB2C12345X"]},
            "D002": {"aliases": [{"name": "便民中心", "valid_from": "2025-03-03"}]},
        }
    )
    rows = [
        _row("SX1", "便民中心", "2025-03-02 09:00:00"),
        _row("SX2", "便民中心", "2025-03-03 09:00:00"),
        _row("SX3", "11440300MB2C12345X", "2025-03-03 09:00:00"),
    ]
    landing, quarantine, accepted = _land_registry(tmp_path, rows, registry)
    assert quarantine == [] and landing.rows_accepted == 3
    assert accepted == [("SX1", "D001"), ("SX2", "D002"), ("SX3", "D001")]


def test_a_name_that_still_names_several_departments_quarantines_its_row_with_the_candidates(tmp_path: Path) -> None:
    registry = _registry_with(
        {
            "D001": {"aliases": [{"name": "便民中心", "valid_to": "2025-02-28"}]},
            "D002": {"aliases": [{"name": "便民中心", "valid_from": "2025-03-10"}]},
        }
    )
    rows = [_row("SX1", "便民中心", "2025-03-03 09:00:00"), _row("SX2", "D003", "2025-03-03 09:00:00")]
    _landing, quarantine, accepted = _land_registry(tmp_path, rows, registry)
    assert accepted == [("SX2", "D003")]
    assert len(quarantine) == 1 and quarantine[0][0] == 2
    assert "部门「便民中心」可能是 D001、D002" in quarantine[0][1] and "ambiguous department" in quarantine[0][1]


def test_a_name_given_to_two_departments_on_the_same_days_is_refused_when_the_registry_loads() -> None:
    with pytest.raises(
        ValueError, match=r"name '便民中心' is used by both D001 and D002 from 2025-03-01 to 2025-03-31"
    ):
        _registry_with(
            {
                "D001": {"aliases": [{"name": "便民中心", "valid_to": "2025-03-31"}]},
                "D002": {"aliases": [{"name": "便民中心", "valid_from": "2025-03-01"}]},
            }
        )


# --- from a review: each of these failed before its fix -------------------------------


def test_a_label_is_never_carried_across_a_line_the_parser_rejected(tmp_path: Path) -> None:
    """SX4 sits under a D002 line rejected for too many fields: carrying D001 from above
    that line would land it on the wrong department, silently."""
    from tests.test_ingest_landing import _land_with

    def row(case: str, department: str, extra: str = "") -> str:
        return GOOD.replace("SX1", case).replace("D001", department) + extra

    lines = [HEADER, row("SX1", "D001"), row("SX2", ""), row("SX3", "D002", ",多余"), row("SX4", "")]
    landing, quarantine = _land_with(
        tmp_path, ("\r\n".join(lines) + "\r\n").encode("gbk"), {"carry_down": ["department_id"]}
    )
    landed = duckdb.sql(f"select case_id, department_id from '{tmp_path}/lake/service_transactions/*/*.parquet'")
    assert sorted(landed.fetchall()) == [("SX1", "D001"), ("SX2", "D001")]
    assert [line for line, _raw, _reason in quarantine] == [4, 5] and landing.rows_quarantined == 2


def test_a_year_month_number_in_a_date_column_is_not_a_serial_date() -> None:
    from pipelines.ingest.workbook_reader import serial_date

    assert serial_date(202503.0, False) == 202503.0  # not the year 2454
    assert serial_date(46082.375, False) == dt.datetime(2026, 3, 1, 9)


def test_a_note_merged_across_its_row_is_a_note(tmp_path: Path) -> None:
    import io

    from openpyxl import Workbook

    from tests.test_ingest_landing import _land_as

    workbook = Workbook()
    sheet = workbook.active
    for row in (HEADER.split(","), GOOD.split(","), ["注：数据来源于政务服务平台"] + [None] * 15):
        sheet.append(row)
    sheet.merge_cells("A3:P3")
    buffer = io.BytesIO()
    workbook.save(buffer)
    landing, quarantine = _land_as(tmp_path, buffer.getvalue(), "好差评明细_202503.xlsx", "xlsx")
    assert landing.file_error is None and quarantine == [], quarantine
    assert (landing.rows_read, landing.rows_accepted, landing.notes_rows) == (1, 1, 1)


def test_a_header_merged_over_two_columns_is_refused_as_a_repeated_header(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_as

    header = HEADER.split(",") + ["其他"]
    page = (
        "<html><body><table><tr>"
        + "".join(f"<th>{h}</th>" for h in header[:-2])
        + f'<th colspan="2">{header[-2]}</th></tr><tr>'
        + "".join(f"<td>{v}</td>" for v in GOOD.split(","))
        + "<td>x</td></tr></table></body></html>"
    )
    landing, _ = _land_as(tmp_path, page.encode(), "好差评明细_202503.xls", "xls")
    assert landing.file_error is not None and "repeated column headers ['申诉结果']" in landing.file_error


def test_spans_cannot_make_a_small_html_file_into_millions_of_cells(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_with

    bomb = "<tr>" + '<td colspan="1000" rowspan="1000">x</td>' * 10 + "</tr>" + "<tr></tr>" * 999
    page = f"<html><body><table><tr><th>{'</th><th>'.join(HEADER.split(','))}</th></tr>{bomb}</table></body></html>"
    limits = {"max_workbook_bytes": 1024 * 1024}
    changes = {"format": "xls", "limits": limits}
    landing, quarantine = _land_with(tmp_path, page.encode(), changes, "好差评明细_202503.xls")
    assert landing.file_error is not None and "damaged or hostile workbook" in landing.file_error
    assert len(quarantine) == 1


def test_spreadsheetml_indexes_beyond_a_thousand_are_honoured(tmp_path: Path) -> None:
    from pipelines.ingest.markup_workbooks import spreadsheetml_sheets

    path = tmp_path / "x.xml"
    path.write_text(
        '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="s"><Table>'
        '<Row><Cell><Data ss:Type="String">a</Data></Cell></Row>'
        '<Row ss:Index="1500"><Cell ss:Index="1200"><Data ss:Type="String">b</Data></Cell></Row>'
        "</Table></Worksheet></Workbook>",
        encoding="utf-8",
    )
    [(_name, rows)] = spreadsheetml_sheets(path, max_rows=10_000, max_bytes=1 << 27)
    assert len(rows) == 1500 and len(rows[-1]) == 1200 and rows[-1][-1] == "b"


def test_a_refused_tab_delimited_file_is_quarantined_line_by_line_like_a_comma_one(tmp_path: Path) -> None:
    from tests.test_ingest_landing import _land_with

    text = "\r\n".join(line.replace(",", "\t") for line in (HEADER, GOOD, SECOND)) + "\r\n"
    changes = {"title_values": {"comment": r"指标：(?P<value>.+)"}}
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), changes)
    assert landing.file_error is not None and landing.file_format == "csv/tab"
    assert len(quarantine) == 3 and landing.rows_read == 3


def test_a_subset_layout_does_not_tie_with_the_complete_one(tmp_path: Path) -> None:
    """A newer layout adds a column; a file of the older layout holds all of the older
    one's columns and all but one of the newer one's: the older one reads it."""
    from tests.test_ingest_landing import MAPPINGS, _land_with

    columns = dict(MAPPINGS["service_transactions"].columns)
    older = {k: v for k, v in columns.items() if k != "appeal_upheld"}
    values = {k: v for k, v in MAPPINGS["service_transactions"].values.items() if k != "appeal_upheld"}
    header, good = ",".join(HEADER.split(",")[:-1]), ",".join(GOOD.split(",")[:-1])
    layouts = [{"name": "older", "columns": older}, {"name": "newer", "columns": columns}]
    changes = {"columns": older, "values": values, "layouts": layouts}
    landing, quarantine = _land_with(tmp_path, f"{header}\r\n{good}\r\n".encode("gbk"), changes)
    assert landing.file_error is None and quarantine == [], landing.file_error
    assert landing.layout == "older"


def test_a_key_header_with_a_quote_does_not_break_the_duplicates_rule(tmp_path: Path) -> None:
    from tests.test_ingest_landing import MAPPINGS, _land_with

    columns = dict(MAPPINGS["service_transactions"].columns) | {"case_id": "Case'No"}
    header = HEADER.replace("办件编号", "Case'No")
    text = f"{header}\r\n{GOOD}\r\n{GOOD.replace(',满意,', ',不满意,')}\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), {"columns": columns})
    assert landing.file_error is None and len(quarantine) == 2
    assert "同一Case'No内容不同" in quarantine[0][2]
