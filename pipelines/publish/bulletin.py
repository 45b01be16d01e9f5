"""Monthly performance bulletin (绩效通报): marts → one self-contained static HTML file.

Reads only schema ``marts``. The output must be byte-identical for identical marts, so
nothing comes from the clock, every query has a full ORDER BY, and the file is written
with fixed encoding and line endings.
"""

from __future__ import annotations

import calendar
import datetime
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "reports" / "templates"
STYLESHEET = REPO_ROOT / "reports" / "static" / "bulletin.css"
MONTHLY_TEMPLATE = "monthly.html.j2"
PERIOD_TYPE = "month"

Row = dict[str, Any]

GRADES = ("优秀", "良好", "合格", "不合格")
DIRECTION_LABELS = {"higher": "正向（越高越好）", "lower": "逆向（越低越好）"}
OUTLIER_LABELS = {
    "none": "不处理",
    "winsorise": "百分位缩尾",
    "skew_kurtosis": "偏度峰度截尾（COINr 规则）",
}
MISSING_LABELS = {
    "reweight": "权重重分配",
    "group_mean": "同组均值插补",
    "last_observed": "沿用最近值",
}
NORMALISATION_LABELS = {
    "min_max": "极差标准化（最小-最大值）",
    "minmax": "极差标准化（最小-最大值）",
    "z_score": "Z 分数标准化",
    "zscore": "Z 分数标准化",
    "distance_to_target": "目标值距离法",
    "target": "目标值距离法",
    "goalposts": "阈值区间法（goalposts）",
    "percentile_rank": "百分位排名法",
    "percentile": "百分位排名法",
}
SEVERITY_LABELS = {"error": "阻断性", "warning": "提示性"}
# Icon and word together: the level must not be conveyed by colour alone.
WARNING_LABELS = {"red": "● 红色预警", "amber": "▲ 黄色预警"}


# --- format filters -------------------------------------------------------------------


def format_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def format_percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def format_rank_change(value: int | None) -> str:
    """Positive means the department moved up; NULL means new to the ranking."""
    if value is None:
        return "新"
    if value > 0:
        return f"↑{value}"
    if value < 0:
        return f"↓{-value}"
    return "—"


def format_signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def format_number(value: float | None) -> str:
    """Weights and targets: up to 4 decimals, trailing zeros dropped."""
    if value is None:
        return "—"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _label(labels: Mapping[str, str]) -> Any:
    return lambda code: "—" if code is None else labels.get(code, code)


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # `monthly.html.j2` ends in .j2, so j2 must be listed; default=True covers the rest.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.filters.update(
        score=format_score,
        percent=format_percent,
        rank_change=format_rank_change,
        signed=format_signed,
        number=format_number,
        direction_label=_label(DIRECTION_LABELS),
        normalisation_label=_label(NORMALISATION_LABELS),
        outlier_label=_label(OUTLIER_LABELS),
        missing_label=_label(MISSING_LABELS),
        severity_label=_label(SEVERITY_LABELS),
        warning_label=_label(WARNING_LABELS),
    )
    return env


ENVIRONMENT = _build_environment()


# --- queries (marts only) -------------------------------------------------------------


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any]) -> list[Row]:
    # DuckDB rejects unused named parameters, so bind only the `$name`s the query uses.
    used = set(re.findall(r"\$(\w+)", sql))
    cursor = con.execute(sql, {name: value for name, value in params.items() if name in used})
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def _catalogue_version(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> str | None:
    """dim_indicator has no effective dates, so take the version whose indicators were
    actually scored this month (a backfilled month keeps its old version); ties → newest."""
    rows = _rows(
        con,
        """
        SELECT i.catalogue_version
        FROM marts.dim_indicator AS i
        LEFT JOIN (
            SELECT DISTINCT indicator_id FROM marts.fct_indicator_values
            WHERE period = $period AND period_type = $period_type
        ) AS scored ON scored.indicator_id = i.indicator_id
        GROUP BY i.catalogue_version
        ORDER BY count(scored.indicator_id) DESC, i.catalogue_version DESC NULLS LAST
        LIMIT 1
        """,
        params,
    )
    return rows[0]["catalogue_version"] if rows else None


def _departments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
    """One row per department: the version in force during the month (departments merge
    and split), falling back to the latest version."""
    rows = _rows(
        con,
        """
        SELECT department_id, department_name, peer_group
        FROM marts.dim_department
        QUALIFY row_number() OVER (
            PARTITION BY department_id
            ORDER BY coalesce(valid_from <= $month_end, TRUE)
                     AND coalesce(valid_to >= $period, TRUE) DESC,
                     valid_from DESC NULLS LAST, department_name, peer_group
        ) = 1
        ORDER BY department_id
        """,
        params,
    )
    return {row["department_id"]: row for row in rows}


def _node_names(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, str]:
    """Display names for indicator ids and aggregate node ids, preferring the month's
    catalogue version."""
    rows = _rows(
        con,
        """
        SELECT id, name FROM (
            SELECT node_id AS id, node_name AS name, catalogue_version
            FROM marts.dim_catalogue_node
            UNION ALL
            SELECT indicator_id, indicator_name, catalogue_version
            FROM marts.dim_indicator
        )
        QUALIFY row_number() OVER (
            PARTITION BY id
            ORDER BY catalogue_version IS NOT DISTINCT FROM $version DESC,
                     catalogue_version DESC NULLS LAST, name
        ) = 1
        ORDER BY id
        """,
        params,
    )
    return {row["id"]: row["name"] for row in rows}


def _rankings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, composite_score, rank, peer_group_rank, rank_change,
               grade, peer_group, bonus_points, veto_reason
        FROM marts.fct_rankings
        WHERE period = $period AND period_type = $period_type
        ORDER BY rank NULLS LAST, department_id
        """,
        params,
    )


def _warnings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, indicator_id, level, message
        FROM marts.fct_warnings
        WHERE period = $period AND period_type = $period_type
        ORDER BY CASE level WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END,
                 department_id, indicator_id, level, message
        """,
        params,
    )


def _quality_files(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    # Row counts repeat on each check row of a file, so take them once per file.
    return _rows(
        con,
        """
        SELECT source, file_name, file_hash,
               max(rows_read) AS rows_read,
               max(rows_accepted) AS rows_accepted,
               max(rows_quarantined) AS rows_quarantined,
               count(check_name) AS checks,
               count(*) FILTER (WHERE NOT coalesce(passed, FALSE)) AS failed_checks
        FROM marts.fct_data_quality
        WHERE period = $period AND file_hash IS NOT NULL  -- source-level checks have no file
        GROUP BY source, file_name, file_hash
        ORDER BY source, file_name, file_hash
        """,
        params,
    )


def _failed_checks(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    # A check with unknown outcome (NULL) is reported as failed rather than hidden.
    return _rows(
        con,
        """
        SELECT source, file_name, check_name, severity, details
        FROM marts.fct_data_quality
        WHERE period = $period AND NOT coalesce(passed, FALSE)
        ORDER BY CASE severity WHEN 'error' THEN 0 ELSE 1 END,
                 source, file_name, check_name, file_hash, severity
        """,
        params,
    )


def _indicators(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT indicator_id, indicator_name, dimension, direction, weight, unit,
               normalisation, target, min_obs, outlier_method, missing_method, max_lookback
        FROM marts.dim_indicator
        WHERE catalogue_version IS NOT DISTINCT FROM $version
        ORDER BY dimension, indicator_id
        """,
        params,
    )


def _dimension_scores(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, level, dimension, score
        FROM marts.fct_department_scores
        WHERE period = $period AND period_type = $period_type
        ORDER BY department_id, level, dimension
        """,
        params,
    )


# --- context and rendering ------------------------------------------------------------


def _month_end(period: datetime.date) -> datetime.date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def _stylesheet() -> Markup:
    css = STYLESHEET.read_text(encoding="utf-8")
    if "</" in css:  # would end the <style> element early
        raise ValueError(f"{STYLESHEET} must not contain '</'")
    return Markup(css)  # our own file; HTML-escaping would break quoted font names


def catalogue_version_of(con: duckdb.DuckDBPyConnection, period: datetime.date) -> str | None:
    """The catalogue version a month's bulletin is built on."""
    return _catalogue_version(con, {"period": period, "period_type": PERIOD_TYPE})


def names_in_force(con: duckdb.DuckDBPyConnection, period: datetime.date) -> tuple[dict[str, Row], dict[str, str]]:
    """Departments (name, peer group) and indicator/node names as the month's bulletin shows them."""
    departments = _departments(con, {"period": period, "month_end": _month_end(period)})
    return departments, _node_names(con, {"version": catalogue_version_of(con, period)})


def _build_context(con: duckdb.DuckDBPyConnection, period: datetime.date) -> dict[str, Any]:
    params: dict[str, Any] = {"period": period, "period_type": PERIOD_TYPE}
    version = _catalogue_version(con, params)
    departments = _departments(con, {**params, "month_end": _month_end(period)})
    names = _node_names(con, {"version": version})

    def department_name(department_id: str) -> str:
        department = departments.get(department_id)
        return department["department_name"] if department else department_id

    rankings = _rankings(con, params)
    for row in rankings:
        department = departments.get(row["department_id"], {})
        row["department_name"] = department_name(row["department_id"])
        row["peer_group"] = row["peer_group"] or department.get("peer_group") or "未分组"

    peer_groups: dict[str, list[Row]] = {}
    for row in rankings:
        peer_groups.setdefault(row["peer_group"], []).append(row)
    peer_group_tables = [
        {
            "name": group,
            "rows": sorted(
                rows,
                key=lambda r: (r["peer_group_rank"] is None, r["peer_group_rank"] or 0, r["department_id"]),
            ),
        }
        for group, rows in sorted(peer_groups.items())
    ]

    warnings = _warnings(con, params)
    for row in warnings:
        row["department_name"] = department_name(row["department_id"])
        row["indicator_name"] = names.get(row["indicator_id"], row["indicator_id"])

    indicators = _indicators(con, {"version": version})
    for row in indicators:
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])

    scores_by_department: dict[str, list[Row]] = {}
    for row in _dimension_scores(con, params):
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])
        scores_by_department.setdefault(row["department_id"], []).append(row)

    quality_files = _quality_files(con, params)
    failed_checks = _failed_checks(con, params)

    return {
        "title": f"{period.year}年{period.month}月政府部门绩效通报",
        "period": period,
        "period_label": f"{period.year}年{period.month}月",
        "catalogue_version": version,
        "stylesheet": _stylesheet(),
        "rankings": rankings,
        "grade_counts": [(grade, sum(r["grade"] == grade for r in rankings)) for grade in GRADES],
        "peer_groups": peer_group_tables,
        "warnings": warnings,
        "red_count": sum(w["level"] == "red" for w in warnings),
        "amber_count": sum(w["level"] == "amber" for w in warnings),
        "indicators": indicators,
        "scores_by_department": scores_by_department,
        "quality_files": quality_files,
        "quality_totals": {
            key: sum(f[key] or 0 for f in quality_files)
            for key in ("rows_read", "rows_accepted", "rows_quarantined", "checks", "failed_checks")
        },
        "failed_checks": failed_checks,
        "blocking_failures": sum(c["severity"] == "error" for c in failed_checks),
    }


def render_monthly_bulletin(
    con: duckdb.DuckDBPyConnection, period: datetime.date, out_dir: Path, approval: Mapping[str, Any] | None = None
) -> Path:
    """Render the monthly bulletin for `period` (first day of the month) from the
    marts and write it to ``out_dir/bulletin_YYYY-MM.html``; return that path.
    Without `approval` it is a draft, marked on every page; with it (approved_by,
    approved_at, revision, note) it is the published edition."""
    if period.day != 1:
        raise ValueError(f"period must be the first day of a month, got {period.isoformat()}")
    context = _build_context(con, period) | {"approval": approval}
    html = ENVIRONMENT.get_template(MONTHLY_TEMPLATE).render(context)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"bulletin_{period:%Y-%m}.html"
    # Write then rename, so a reader never sees a half-written bulletin.
    tmp_path = out_path.with_name(out_path.name + ".tmp")
    tmp_path.write_text(html, encoding="utf-8", newline="\n")
    os.replace(tmp_path, out_path)
    return out_path
