"""XLSX exports of the ranking and indicator tables: what an office opens in Excel.

Built from the bulletin tests' hand-made marts, with department names planted
that a spreadsheet would run as formulas."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from pipelines.publish.exports import write_monthly_export
from tests.test_bulletin_render import MARCH, MARCH_RANKINGS, _build_marts

PLANTED = {
    "D01": "=cmd|' /C calc'!A0",
    "D02": '+HYPERLINK("http://example.invalid","点此")',
    "D03": "-2+3",
    "D04": "@SUM(1,1)",
}


@pytest.fixture
def marts(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    _build_marts(path)
    con = duckdb.connect(str(path))
    for department_id, name in PLANTED.items():
        con.execute(
            "update marts.dim_department set department_name = ? where department_id = ?", [name, department_id]
        )
    con.close()
    return path


def _export(marts: Path, out: Path) -> Path:
    con = duckdb.connect(str(marts), read_only=True)
    try:
        return write_monthly_export(con, MARCH, out)
    finally:
        con.close()


def test_the_ranking_sheet_has_one_row_per_ranked_department_in_rank_order(marts, tmp_path):
    path = _export(marts, tmp_path / "out")
    assert path.name == "绩效排名_2024-03.xlsx"
    sheet = load_workbook(path)["综合排名"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("排名", "部门编码", "部门")
    expected = sorted(MARCH_RANKINGS, key=lambda r: (r[2], r[0]))
    assert [(r[0], r[1], r[5]) for r in rows[1:]] == [(r[2], r[0], r[1]) for r in expected]


def test_text_that_a_spreadsheet_would_run_is_written_as_text(marts, tmp_path):
    path = _export(marts, tmp_path / "out")
    workbook = load_workbook(path)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
    names = {row[1]: row[2] for row in workbook["综合排名"].iter_rows(min_row=2, values_only=True)}
    assert {d: names[d] for d in PLANTED} == PLANTED  # shown as typed, not evaluated
    # In the sheet XML they are strings (shared or inline) with the quote prefix style, never <f>.
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
        styles = archive.read("xl/styles.xml").decode()
    assert "<f>" not in xml and 'quotePrefix="1"' in styles


def test_same_marts_same_bytes(marts, tmp_path):
    first = _export(marts, tmp_path / "a").read_bytes()
    second = _export(marts, tmp_path / "b").read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_indicator_sheet_has_every_value_of_the_month(marts, tmp_path):
    path = _export(marts, tmp_path / "out")
    rows = list(load_workbook(path)["指标明细"].iter_rows(min_row=2, values_only=True))
    con = duckdb.connect(str(marts), read_only=True)
    expected = con.execute(
        "select count(*) from marts.fct_indicator_values where period = ? and period_type = 'month'", [MARCH]
    ).fetchall()[0][0]
    con.close()
    assert len(rows) == expected > 0
