"""Landing single files: what a department sends, what lands, what is
quarantined and why. Real files on disk, the real mappings and registry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from openpyxl import Workbook

from pipelines.ingest.land import land_file
from pipelines.ingest.mapping import load_mapping, load_mappings
from pipelines.reference import ConfigError, load_departments
from pipelines.settings import PROJECT_ROOT

MAPPINGS = load_mappings(PROJECT_ROOT / "sources" / "mappings")
REGISTRY = load_departments(PROJECT_ROOT / "sources" / "reference")
HEADER = "办件编号,部门编码,部门名称,事项名称,办理渠道,受理时间,办结时间,承诺时限,应交材料数,实交材料数,评价等级,评价内容,是否整改,整改时间,是否申诉,申诉结果"
GOOD = "SX1,D001,市政务服务和数据管理局,营业执照设立登记,网办,2025-03-03 09:00:00,2025-03-04 10:00:00,5,4,3,满意,,,,,"


def _land(tmp_path: Path, text: str, encoding: str = "gbk", name: str = "好差评明细_202503.csv"):
    return _land_as(tmp_path, text.encode(encoding), name, "csv")


def _land_as(tmp_path: Path, content: bytes, name: str, mapping_format: str):
    """Land `content` as service_transactions/`name` under the sample's mapping, its
    format set to `mapping_format`; return the landing and the quarantine rows."""
    return _land_with(tmp_path, content, {"format": mapping_format}, name)


def _land_with(tmp_path: Path, content: bytes, changes: dict, name: str = "好差评明细_202503.csv"):
    """Land `content` under the sample's service_transactions mapping with `changes`
    to its settings, validated as a mapping file's would be."""
    inbox = tmp_path / "inbox" / "service_transactions"
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(content)
    mapping = MAPPINGS["service_transactions"]
    mapping = type(mapping).model_validate(mapping.model_dump() | changes)
    landing = land_file(
        path,
        f"service_transactions/{name}",
        mapping,
        REGISTRY,
        tmp_path / "lake",
        tmp_path / "archive",
    )
    quarantine = duckdb.sql(
        f"select line, raw_text, reason from '{tmp_path}/lake/quarantine/*/*/*.parquet' order by line"
    ).fetchall()
    return landing, quarantine


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_each_encoding_offices_use_is_detected_and_reported(tmp_path, encoding):
    landing, quarantine = _land(tmp_path, f"{HEADER}\r\n{GOOD}\r\n", encoding)
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (1, 1, 0)
    assert quarantine == []
    expected = {"gbk": "gb18030", "gb18030": "gb18030", "utf-8": "utf-8", "utf-8-sig": "utf-8-sig"}[encoding]
    assert landing.encoding == expected


def test_bad_rows_are_quarantined_with_line_and_reason_and_nothing_is_lost(tmp_path):
    rows = [
        "报表：2025年3月办件明细",  # line 1: title
        HEADER,  # line 2
        GOOD,  # line 3
        GOOD.replace("SX1", "SX2").replace("D001", "D999"),  # 4 unknown department
        GOOD.replace("SX1", "SX3").replace(",满意,", ",很好,"),  # 5 rating not a level
        GOOD.replace("SX1", "SX4").replace("2025-03-04 10:00:00", "2025-03-01 10:00:00"),  # 6 completed before received
        "SX5,D001,短行",  # 7 ragged row
        # 8: full-width digits with a unit, and a channel padded with a full-width space: fine
        GOOD.replace("SX1", "SX6").replace(",5,4,3,", ",５个工作日,4,3,").replace(",网办,", ",\u3000网办 ,"),
        GOOD.replace("SX1", "SX7").replace(",网办,", ",邮寄,"),  # 9 unknown channel
        "",  # 10 blank
        "注：本表由省政务服务平台导出",  # 11 notes
    ]
    landing, quarantine = _land(tmp_path, "\r\n".join(rows) + "\r\n")
    assert landing.rows_read == 7
    assert landing.rows_read == landing.rows_accepted + landing.rows_quarantined
    assert landing.rows_accepted == 2
    reasons = {line: reason for line, _raw, reason in quarantine}
    assert sorted(reasons) == [4, 5, 6, 7, 9]
    assert "未知部门「D999」" in reasons[4]
    assert "评价等级" in reasons[5] and "很好" in reasons[5]
    assert "办结时间早于受理时间" in reasons[6]
    assert "列数不足" in reasons[7]
    assert "邮寄" in reasons[9]


def test_a_file_in_the_wrong_encoding_is_refused_whole_with_its_line_and_column(tmp_path):
    text = f"{HEADER}\n{GOOD}\n"
    mapping = MAPPINGS["service_transactions"].model_copy(update={"encoding": "utf-8"})
    inbox = tmp_path / "service_transactions"
    inbox.mkdir()
    path = inbox / "好差评明细_202503.csv"
    path.write_bytes(text.encode("gbk"))
    landing = land_file(
        path, "service_transactions/好差评明细_202503.csv", mapping, REGISTRY, tmp_path / "lake", tmp_path / "archive"
    )
    assert landing.file_error is not None
    assert "line 1, column 1" in landing.file_error and "utf-8" in landing.file_error
    assert landing.rows_read == landing.rows_quarantined == 2 and landing.rows_accepted == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "empty"), ("办件编号,部门编码\n", "missing columns"), ("a,b,c\n1,2,3\n", "missing columns")],
)
def test_empty_and_headerless_files_get_a_clear_error(tmp_path, text, expected):
    landing, _ = _land(tmp_path, text)
    assert landing.file_error is not None and expected in landing.file_error
    assert "好差评明细_202503.csv" in landing.file_error


def test_personal_data_is_masked_before_it_lands(tmp_path):
    comment = "联系电话13812345678，身份证110101199003074514，座机010-62345678"
    _landing, quarantine = _land(
        tmp_path,
        f"{HEADER}\n{GOOD.replace(',满意,,', f',满意,{comment},')}\n"
        f"{GOOD.replace('SX1', 'SX2').replace(',满意,,', f',很好,{comment},')}\n",
    )
    landed = duckdb.sql(f"select comment from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    text = str(landed) + str(quarantine)
    for secret in ("13812345678", "110101199003074514", "62345678"):
        assert secret not in text
    assert "[手机号]" in text and "[身份证号]" in text


def test_the_same_file_twice_changes_nothing(tmp_path):
    first, _ = _land(tmp_path, f"{HEADER}\n{GOOD}\n")
    lake_files = {p: p.read_bytes() for p in (tmp_path / "lake").rglob("*.parquet")}
    second, _ = _land(tmp_path, f"{HEADER}\n{GOOD}\n")
    assert second == first
    assert {p: p.read_bytes() for p in (tmp_path / "lake").rglob("*.parquet")} == lake_files
    assert len(list((tmp_path / "archive").rglob("*.csv"))) == 1


def test_spreadsheet_with_title_rows_notes_and_data_on_the_second_sheet(tmp_path):
    workbook = Workbook()
    workbook.active.title = "说明"
    workbook.active["A1"] = "本表说明"
    sheet = workbook.create_sheet("执行情况")
    sheet.append(["2025年3月部门预算执行情况表"])
    sheet.append(["单位：万元"])
    sheet.append(["部门编码", "部门名称", "月份", "预算数", "执行数"])
    sheet.append(["D001", "市政务服务和数据管理局", "2025年3月", "1,200.50", 1100])
    sheet.append(["D002", "市人民政府办公室", "2025年3月", "—", 80])
    sheet.append([])
    sheet.append(["注：执行数为当月实际支出。"])
    folder = tmp_path / "budget"
    folder.mkdir()
    path = folder / "预算执行_202503.xlsx"
    workbook.save(path)
    landing = land_file(
        path,
        "budget/预算执行_202503.xlsx",
        MAPPINGS["budget_execution"],
        REGISTRY,
        tmp_path / "lake",
        tmp_path / "archive",
    )
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined, landing.notes_rows) == (2, 1, 1, 1)
    accepted = duckdb.sql(
        f"select department_id, month, planned_amount from '{tmp_path}/lake/budget_execution/*/*.parquet'"
    ).fetchall()
    assert accepted == [("D001", dt.date(2025, 3, 1), 1200.5)]
    reason = duckdb.sql(f"select line, reason from '{tmp_path}/lake/quarantine/*/*/*.parquet'").fetchall()
    assert reason[0][0] == 5 and "预算数" in reason[0][1]


def test_legacy_xls_with_title_rows_notes_and_data_on_the_second_sheet(tmp_path):
    """A BIFF (Excel 97-2003) workbook, as older office systems still export."""
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    workbook.add_sheet("说明").write(0, 0, "本表说明")
    sheet = workbook.add_sheet("执行情况")
    rows = [
        ["2025年3月部门预算执行情况表"],
        ["部门编码", "部门名称", "月份", "预算数", "执行数"],
        ["D001", "市政务服务和数据管理局", "2025年3月", "1,200.50", 1100],
        ["D002", "市人民政府办公室", "2025-03-01", 900, 80.5],
        ["D999", "未知的部门", "2025年3月", 10, 10],
        [],
        ["注：执行数为当月实际支出。"],
        ["　　数据截至月末。"],
    ]
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            sheet.write(r, c, value)
    folder = tmp_path / "budget"
    folder.mkdir()
    path = folder / "预算执行_202503.xls"
    workbook.save(str(path))
    mapping = MAPPINGS["budget_execution"].model_copy(update={"format": "xls"})
    landing = land_file(path, "budget/预算执行_202503.xls", mapping, REGISTRY, tmp_path / "lake", tmp_path / "archive")
    assert landing.file_error is None
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined, landing.notes_rows) == (3, 2, 1, 2)
    accepted = duckdb.sql(
        f"select department_id, month, planned_amount, actual_amount from '{tmp_path}/lake/budget_execution/*/*.parquet' order by 1"
    ).fetchall()
    assert accepted == [("D001", dt.date(2025, 3, 1), 1200.5, 1100.0), ("D002", dt.date(2025, 3, 1), 900.0, 80.5)]
    line, reason = duckdb.sql(f"select line, reason from '{tmp_path}/lake/quarantine/*/*/*.parquet'").fetchall()[0]
    assert line == 5 and "未知部门" in reason


def test_mapping_mistakes_are_reported_with_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: service_transactions\nfile_pattern: x/*.csv\nformat: csv\ncolumns: {case_id: 办件编号, colour: 颜色}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_mapping(bad)
    message = str(error.value)
    assert "bad.yaml" in message and "colour" in message and "department_id" in message


def test_catalogue_mistakes_name_the_node_an_analyst_edits(tmp_path):
    import shutil

    from pipelines.reference import load_catalogue

    reference = tmp_path / "reference"
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", reference)
    catalogue = reference / "catalogue.yaml"
    text = catalogue.read_text(encoding="utf-8")
    catalogue.write_text(
        text.replace(
            "{indicator: online_rate, name: 全程网办率, weight: 50,",
            "{indicator: online_rate, name: 全程网办率, weight: -5,",
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_catalogue(reference)
    message = str(error.value)
    assert "catalogue.yaml" in message
    assert "online_rate › weight" in message and "greater than 0" in message
    assert "AggregateNode" not in message


def test_spreadsheet_rows_are_counted_from_the_sheet_itself():
    """The real Baltimore 311 export declares a wrong sheet dimension (A1); its
    10,000 requests are counted from the sheet XML, not from what a reader saw."""
    from python_calamine import CalamineWorkbook

    from pipelines.ingest.workbook_reader import count_xlsx_rows

    real = PROJECT_ROOT / "tests" / "data" / "real" / "baltimore311" / "311_sample.xlsx"
    assert count_xlsx_rows(real, "Sheet 1", header_row=1) == 10_000
    rows = CalamineWorkbook.from_path(str(real)).get_sheet_by_name("Sheet 1").to_python()
    assert len(rows) - 1 == 10_000


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025年3月3日", dt.datetime(2025, 3, 3)),
        ("2025/3/3", dt.datetime(2025, 3, 3)),
        ("20250303", dt.datetime(2025, 3, 3)),
        ("２０２５－０３－０３　０９：３０：００", dt.datetime(2025, 3, 3, 9, 30)),
        ("2025/3/3 9:30", dt.datetime(2025, 3, 3, 9, 30)),
    ],
)
def test_dates_as_offices_write_them_are_read_exactly(tmp_path, written, expected):
    row = GOOD.replace("2025-03-03 09:00:00", written).replace("2025-03-04 10:00:00", "")
    landing, quarantine = _land(tmp_path, f"{HEADER}\r\n{row}\r\n")
    assert quarantine == [] and landing.rows_accepted == 1
    got = duckdb.sql(f"select received_at from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert got == [(expected,)]


@pytest.mark.parametrize(
    ("limit", "required", "submitted"),
    [("５个工作日", "４", "３"), ("5 个工作日", "1,004", "1,000"), ("５", "—", "无")],
)
def test_numbers_as_offices_write_them_are_read_exactly(tmp_path, limit, required, submitted):
    row = GOOD.replace(",5,4,3,", f',{limit},"{required}","{submitted}",')
    landing, quarantine = _land(tmp_path, f"{HEADER}\r\n{row}\r\n")
    assert quarantine == [] and landing.rows_accepted == 1
    got = duckdb.sql(
        f"select time_limit_days, materials_required, materials_submitted from '{tmp_path}/lake/service_transactions/*/*.parquet'"
    ).fetchall()

    def number(text: str) -> int | None:
        text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789")).replace(",", "")
        return None if text in ("—", "无") else int(text.split("个")[0].strip())

    assert got == [(number(limit), number(required), number(submitted))]


def test_a_bad_row_below_fields_holding_newlines_is_named_by_its_line_in_the_file(tmp_path):
    """DuckDB numbers lines as if no quoted field held a newline; the quarantine must
    give the line a person finds in the file (lines 4 and 8 below, not 3 and 5)."""
    two_lines = GOOD.replace(",满意,,", ',满意,"第一行\n第二行",')
    three_lines = GOOD.replace("SX1,", "SX2,").replace(",满意,,", ',满意,"一\n二\n三",')
    text = f"{HEADER}\r\n{two_lines}\r\nSX8,D001,短行\r\n{three_lines}\r\nSX9,D001,又一短行\r\n"
    landing, quarantine = _land(tmp_path, text)
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (4, 2, 2)
    assert [(line, raw) for line, raw, _reason in quarantine] == [(4, "SX8,D001,短行"), (8, "SX9,D001,又一短行")]
    lines_in_file = text.replace("\r\n", "\n").split("\n")
    assert lines_in_file[4 - 1] == "SX8,D001,短行" and lines_in_file[8 - 1] == "SX9,D001,又一短行"


def test_the_same_bytes_land_as_the_same_rows_in_the_same_order(tmp_path, small_city):
    """Landing twice gives equal Parquet rows, in the file's order (the department
    lookup's join does not keep it): a rerun after a crash must equal a clean run."""
    import pyarrow.parquet as pq

    mapping = MAPPINGS["service_transactions"]
    path = sorted((small_city / "service_transactions").glob("*.csv"))[-1]
    landed = []
    for attempt in range(3):
        lake = tmp_path / f"lake{attempt}"
        land_file(path, f"service_transactions/{path.name}", mapping, REGISTRY, lake, tmp_path / "archive")
        rows = pq.read_table(next((lake / "service_transactions").rglob("*.parquet"))).to_pylist()
        assert [row["_line"] for row in rows] == sorted(row["_line"] for row in rows)
        landed.append(rows)
    assert len(landed[0]) > 100 and landed[0] == landed[1] == landed[2]
