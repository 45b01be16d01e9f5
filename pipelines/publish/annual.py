"""年度绩效考核: what an annual edition shows beyond a month's or a quarter's.

Each department's four quarters beside its annual score, last year's grade beside
this year's, the lists of 优秀 and 不合格 departments, and the departments in office
for part of the year: scored on their months in office, or, merged under
annual.merged_departments: successor, counted with their successor (docs/methodology.md §9b).
Reads the marts through mart_rows, as edition_rows does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from pipelines.publish.config import QUARTER_NAMES
from pipelines.publish.mart_rows import Row
from pipelines.publish.mart_rows import rows as _rows

BEST_GRADE, WORST_GRADE = "优秀", "不合格"


def quarter_rankings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, period, composite_score, rank, grade
        FROM marts.fct_rankings
        WHERE period_type = 'quarter' AND period BETWEEN $period AND $last_month
        ORDER BY department_id, period
        """,
        params,
    )


def previous_grades(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
    rows = _rows(
        con,
        """
        SELECT department_id, composite_score, rank, grade
        FROM marts.fct_rankings
        WHERE period_type = 'year' AND period = $previous
        ORDER BY department_id
        """,
        params,
    )
    return {row["department_id"]: row for row in rows}


def part_year_departments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    """Departments whose days in office began or ended inside the year."""
    return _rows(
        con,
        """
        SELECT department_id, department_name, valid_from, valid_to, merged_into, year_scored_with
        FROM marts.dim_department
        WHERE (valid_from > $period AND valid_from <= $period_end) OR (valid_to >= $period AND valid_to < $period_end)
        ORDER BY department_id
        """,
        params,
    )


def base_methods(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> set[str]:
    """How the year's base scores were made: 'tree' (pooled), or built up from 'quarters' or 'months' (§9b)."""
    rows = _rows(
        con,
        "SELECT DISTINCT base_method FROM marts.fct_rankings WHERE period_type = 'year' AND period = $period"
        " ORDER BY base_method",
        params,
    )
    return {row["base_method"] for row in rows}


def annual_context(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], rankings: list[Row]) -> dict[str, Any]:
    """The annual edition's own section: one row per ranked department, in rank order."""
    quarters: dict[str, dict[int, Row]] = {}
    for row in quarter_rankings(con, params):
        quarters.setdefault(row["department_id"], {})[(row["period"].month - 1) // 3] = row
    before = previous_grades(con, params)
    rows = []
    for ranking in rankings:
        department_id = ranking["department_id"]
        rows.append(
            {
                "ranking": ranking,
                "quarters": [quarters.get(department_id, {}).get(q) for q in range(4)],
                "previous": before.get(department_id),
            }
        )
    part_year = part_year_departments(con, params)
    names = {r["department_id"]: r["department_name"] for r in [*rankings, *part_year]}
    for row in part_year:
        row["merged_into_name"] = names.get(row["merged_into"], row["merged_into"])
        row["scored_with_name"] = names.get(row["year_scored_with"], row["year_scored_with"])
        row["began"] = row["valid_from"] if row["valid_from"] > params["period"] else None
        row["ended"] = row["valid_to"] if row["valid_to"] and row["valid_to"] < params["period_end"] else None
    return {
        "quarter_labels": [f"第{name}季度" for name in QUARTER_NAMES],
        "rows": rows,
        "previous": before,
        "best": [r for r in rankings if r["grade"] == BEST_GRADE],
        "worst": [r for r in rankings if r["grade"] == WORST_GRADE or r["veto_reason"] is not None],
        "part_year": part_year,
        "built_up": bool(base_methods(con, params) - {"tree"}),
    }
