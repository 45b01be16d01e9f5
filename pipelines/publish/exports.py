"""XLSX exports of an edition's (month or quarter) ranking and indicator tables, because offices live in Excel.

A draft's export is written into the edition's version folder, beside its HTML
(publish/edition_folder.py), so the edition and its export are swapped in together.

Read from the marts only, like the bulletin. Two guarantees:
- formula injection: a text value beginning with =, +, - or @ (or a tab or
  carriage return, which Excel strips before them) is written as text with
  Excel's quote prefix, never as a formula;
- same marts, same bytes: the workbook's dates are the period's last day, not
  the clock, and rows are in a fixed order.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font

from pipelines.publish.bulletin import names_in_force
from pipelines.publish.config import Edition
from pipelines.xlsx import save_workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

RANKING_COLUMNS = [
    ("排名", "rank"),
    ("部门编码", "department_id"),
    ("部门", "department_name"),
    ("同类组", "peer_group"),
    ("同类排名", "peer_group_rank"),
    ("综合得分", "composite_score"),
    ("等次", "grade"),
    ("名次变化", "rank_change"),
    ("名次区间P05", "rank_p05"),
    ("名次区间P95", "rank_p95"),
]
INDICATOR_COLUMNS = [
    ("部门编码", "department_id"),
    ("部门", "department_name"),
    ("指标编码", "indicator_id"),
    ("指标", "indicator_name"),
    ("原始值", "raw_value"),
    ("样本数", "n_obs"),
    ("得分", "score"),
    ("是否插补", "is_imputed"),
]


def safe_cell(cell: Cell, value: Any) -> None:
    """Put `value` in `cell`; text that a spreadsheet would run as a formula stays text."""
    cell.value = value
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.data_type = "s"
        cell.quotePrefix = True


def _sheet(workbook: Workbook, title: str, columns: list[tuple[str, str]], rows: list[dict]) -> None:
    sheet = workbook.create_sheet(title)
    for index, (label, _key) in enumerate(columns, start=1):
        safe_cell(sheet.cell(1, index), label)
        sheet.cell(1, index).font = Font(bold=True)
    for r, row in enumerate(rows, start=2):
        for c, (_label, key) in enumerate(columns, start=1):
            value = row[key]
            if isinstance(value, bool):
                value = "是" if value else "否"
            safe_cell(sheet.cell(r, c), value)
    sheet.freeze_panes = "A2"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, edition: Edition) -> list[dict]:
    cursor = con.execute(sql, [edition.period, edition.period_type])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values)) for values in cursor.fetchall()]


def write_export(con: duckdb.DuckDBPyConnection, edition: Edition, out_dir: Path) -> Path:
    """绩效排名_<key>.xlsx (2026-03, 2026-Q1): sheets 综合排名 and 指标明细 for one edition."""
    departments, names = names_in_force(con, edition)  # as the bulletin shows them
    rankings = _rows(
        con,
        """
        select rank, department_id, peer_group_rank, composite_score, grade, rank_change, rank_p05, rank_p95
        from marts.fct_rankings
        where period = ? and period_type = ?
        order by rank, department_id
        """,
        edition,
    )
    indicators = _rows(
        con,
        """
        select department_id, indicator_id, raw_value, n_obs, score, is_imputed
        from marts.fct_indicator_values
        where period = ? and period_type = ?
        order by department_id, indicator_id
        """,
        edition,
    )
    for row in rankings + indicators:
        department = departments.get(row["department_id"], {})
        row["department_name"] = department.get("department_name")
        row["peer_group"] = department.get("peer_group")
    for row in indicators:
        row["indicator_name"] = names.get(row["indicator_id"], row["indicator_id"])
    workbook = Workbook()
    workbook.remove(workbook.active)
    _sheet(workbook, "综合排名", RANKING_COLUMNS, rankings)
    _sheet(workbook, "指标明细", INDICATOR_COLUMNS, indicators)
    path = out_dir / f"绩效排名_{edition.key}.xlsx"
    save_workbook(workbook, path, dt.datetime.combine(edition.end, dt.time()), "govperf")
    return path


def write_monthly_export(con: duckdb.DuckDBPyConnection, month: dt.date, out_dir: Path) -> Path:
    return write_export(con, Edition.month(month), out_dir)
