"""Performance bulletins (绩效通报): marts → static HTML editions, one per month or quarter.

An edition is one self-contained HTML file (CSS and SVG charts inline; it opens
offline from disk), with a page per department in a folder beside it:

    <out_dir>/bulletin_2026-03.html
    <out_dir>/bulletin_2026-03_departments/<department_id>.html

A draft's out_dir is a fresh version folder that edition_folder swaps in whole, with
the edition's XLSX export beside the HTML.

Reads only schema ``marts``. The same marts give the same bytes: nothing comes from
the clock, every query has a full ORDER BY, and dates shown come from the approval
record or from configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipelines.parquet import temporary_beside
from pipelines.publish import charts, derivation, findings, official_form
from pipelines.publish.config import BulletinConfig, Edition, load_bulletin_config
from pipelines.publish.finding_marks import current_marks
from pipelines.publish.mart_rows import Row
from pipelines.publish.mart_rows import has_table as _has_table
from pipelines.publish.mart_rows import rows as _rows

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "reports" / "templates"
STYLESHEET = REPO_ROOT / "reports" / "static" / "bulletin.css"
OFFICIAL_FORM_STYLESHEET = REPO_ROOT / "reports" / "static" / "official_form.css"  # with bulletin.yaml official_form
EDITION_TEMPLATE = "edition.html.j2"
DEPARTMENT_TEMPLATE = "department.html.j2"
ANNEX_TEMPLATE = "annex.html.j2"
ANNEX_PAGE = "internal/疑点核查.html"
COMPOSITE = "composite"


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
ADJUSTMENT_LABELS = {"bonus": "加分", "penalty": "减分", "veto": "一票否决"}


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


def format_p_value(value: float) -> str:
    """Two significant digits; below what the screens' fixed-point sums hold (1e-18),
    "< 1e-18", never a bare 0."""
    return f"{value:.2g}" if value > 0 else "< 1e-18"


def format_value(value: float | None, unit: str | None = None) -> str:
    """An indicator's value in its unit: two decimals, unit appended."""
    if value is None:
        return "—"
    return f"{value:,.2f}{unit or ''}"


def format_band(row: Mapping[str, Any]) -> str:
    low, high = row.get("rank_p05"), row.get("rank_p95")
    if low is None or high is None:
        return "—"
    return f"{low:.0f}–{high:.0f}"


def css_string(value: str) -> Markup:
    """A CSS string literal for @page running headers (quotes, backslashes and '<' escaped)."""
    text = value.unescape() if isinstance(value, Markup) else str(value)  # a block comes HTML-escaped
    escaped = "".join(f"\\{ord(ch):x} " if ch in '"\\<>\n\r' else ch for ch in text)
    return Markup(f'"{escaped}"')


def page_name(department_id: str) -> str:
    """The file name (without .html) of a department's page: its id when that is a safe
    file name, else a hash of it, so an id can never reach outside the pages folder."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}", department_id):
        return department_id
    return "d-" + hashlib.sha256(department_id.encode()).hexdigest()[:16]


def _label(labels: Mapping[str, str]) -> Any:
    return lambda code: "—" if code is None else labels.get(code, code)


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Templates end in .j2, so j2 must be listed; default=True covers the rest.
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
        value=format_value,
        band=format_band,
        css_string=css_string,
        page_name=page_name,
        p_value=format_p_value,
        direction_label=_label(DIRECTION_LABELS),
        normalisation_label=_label(NORMALISATION_LABELS),
        outlier_label=_label(OUTLIER_LABELS),
        missing_label=_label(MISSING_LABELS),
        severity_label=_label(SEVERITY_LABELS),
        warning_label=_label(WARNING_LABELS),
        adjustment_label=_label(ADJUSTMENT_LABELS),
    )
    return env


ENVIRONMENT = _build_environment()


# --- queries (marts only) -------------------------------------------------------------


def _catalogue_version(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> str | None:
    """The version the period was scored with (a backfilled month keeps its old one), as
    fct_rankings records it; before anything is ranked, the newest version."""
    rows = _rows(
        con,
        """
        SELECT catalogue_version FROM (
            SELECT catalogue_version, 0 AS preference, count(*) AS n FROM marts.fct_rankings
            WHERE period = $period AND period_type = $period_type AND catalogue_version IS NOT NULL
            GROUP BY catalogue_version
            UNION ALL
            SELECT DISTINCT catalogue_version, 1, 0 FROM marts.dim_indicator
        )
        ORDER BY preference, n DESC, catalogue_version DESC NULLS LAST
        LIMIT 1
        """,
        params,
    )
    return rows[0]["catalogue_version"] if rows else None


def _departments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
    """One row per department: the version in force during the period (departments
    merge and split), falling back to the latest version."""
    rows = _rows(
        con,
        """
        SELECT department_id, department_name, peer_group
        FROM marts.dim_department
        QUALIFY row_number() OVER (
            PARTITION BY department_id
            ORDER BY coalesce(valid_from <= $period_end, TRUE)
                     AND coalesce(valid_to >= $period, TRUE) DESC,
                     valid_from DESC NULLS LAST, department_name, peer_group
        ) = 1
        ORDER BY department_id
        """,
        params,
    )
    return {row["department_id"]: row for row in rows}


def _node_names(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, str]:
    """Display names for indicator ids and aggregate node ids, preferring the period's
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


def _top_dimensions(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[str]:
    """The composite's children (the three-dimensional evaluation), heaviest first."""
    rows = _rows(
        con,
        """
        SELECT node_id FROM marts.dim_catalogue_node
        WHERE catalogue_version IS NOT DISTINCT FROM $version AND level = 1
        ORDER BY weight DESC NULLS LAST, node_id
        """,
        params,
    )
    return [row["node_id"] for row in rows]


def _rankings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, composite_score, base_score, rank, peer_group_rank, rank_change,
               rank_p05, rank_p95, grade, peer_group, bonus_points, veto_reason,
               bottom_streak, bottom_flag, n_ranked
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


def _adjustments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    if not _has_table(con, "fct_adjustments"):
        return []
    return _rows(
        con,
        """
        SELECT department_id, kind, points, reason, evidence_ref
        FROM marts.fct_adjustments
        WHERE period = $period AND period_type = $period_type
        ORDER BY CASE kind WHEN 'veto' THEN 0 WHEN 'penalty' THEN 1 ELSE 2 END,
                 department_id, reason, evidence_ref, points
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
        WHERE period BETWEEN $period AND $last_month AND file_hash IS NOT NULL  -- source-level checks have no file
        GROUP BY source, file_name, file_hash
        ORDER BY source, file_name, file_hash
        """,
        params,
    )


def _check_counts(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> Row:
    return _rows(
        con,
        """
        SELECT count(*) AS checks,
               count(*) FILTER (WHERE passed) AS passed,
               count(*) FILTER (WHERE NOT coalesce(passed, FALSE) AND severity = 'warning') AS warned,
               count(*) FILTER (WHERE NOT coalesce(passed, FALSE) AND severity IS DISTINCT FROM 'warning') AS failed
        FROM marts.fct_data_quality
        WHERE period BETWEEN $period AND $last_month
        """,
        params,
    )[0]


def _failed_checks(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    # A check with unknown outcome (NULL) is reported as failed rather than hidden.
    return _rows(
        con,
        """
        SELECT period, source, file_name, check_name, severity, details
        FROM marts.fct_data_quality
        WHERE period BETWEEN $period AND $last_month AND NOT coalesce(passed, FALSE)
        ORDER BY CASE severity WHEN 'error' THEN 0 ELSE 1 END,
                 period, source, file_name, check_name, file_hash, severity
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
        SELECT department_id, level, dimension, score, rank
        FROM marts.fct_department_scores
        WHERE period = $period AND period_type = $period_type
        ORDER BY department_id, level, dimension
        """,
        params,
    )


def _city_figures(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], indicators: list[str], periods: list[Any]
) -> dict[tuple[str, Any], Row]:
    """City-wide value of each indicator and period: departments' values weighted by their
    observations (a pooled rate for rates), the plain mean where observations are not
    counted. Values below the minimum sample are left out, as everywhere."""
    rows = _rows(
        con,
        """
        SELECT indicator_id, period,
               coalesce(sum(raw_value * n_obs) FILTER (WHERE n_obs > 0)
                            / nullif(sum(n_obs) FILTER (WHERE n_obs > 0), 0),
                        avg(raw_value)) AS value,
               count(*) AS departments,
               sum(n_obs) AS n_obs
        FROM marts.fct_indicator_values
        WHERE period_type = $period_type AND period IN (SELECT unnest($periods))
          AND indicator_id IN (SELECT unnest($indicators))
          AND raw_value IS NOT NULL AND coalesce(meets_min_obs, TRUE)
        GROUP BY indicator_id, period
        ORDER BY indicator_id, period
        """,
        {**params, "periods": periods, "indicators": indicators},
    )
    return {(row["indicator_id"], row["period"]): row for row in rows}


def _indicator_values(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT department_id, indicator_id, raw_value, n_obs, n_unknown, score, is_imputed, is_treated,
               meets_min_obs, imputation, missing_reason
        FROM marts.fct_indicator_values
        WHERE period = $period AND period_type = $period_type
        ORDER BY department_id, indicator_id
        """,
        params,
    )


# The composite a reader sees is fct_rankings.composite_score (after 加减分);
# fct_department_scores holds it before them, so the composite comes from the ranking.
def _trends(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    """Monthly composite and top-dimension scores over the trend window, every department."""
    return _rows(
        con,
        """
        SELECT department_id, period, dimension, score
        FROM marts.fct_department_scores
        WHERE period_type = 'month' AND period BETWEEN $trend_from AND $last_month AND level = 1
          AND score IS NOT NULL
        UNION ALL
        SELECT department_id, period, 'composite', composite_score
        FROM marts.fct_rankings
        WHERE period_type = 'month' AND period BETWEEN $trend_from AND $last_month AND composite_score IS NOT NULL
        ORDER BY department_id, dimension, period
        """,
        params,
    )


def _previous_scores(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    rows = _rows(
        con,
        """
        SELECT department_id, dimension, score
        FROM marts.fct_department_scores
        WHERE period = $previous AND period_type = $period_type AND level = 1
        UNION ALL
        SELECT department_id, 'composite', composite_score
        FROM marts.fct_rankings
        WHERE period = $previous AND period_type = $period_type
        ORDER BY department_id, dimension
        """,
        params,
    )
    return {(row["department_id"], row["dimension"]): row["score"] for row in rows}


def _leader_reviews(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
    """The review of the quarter the edition falls in (a quarterly input applies to each month)."""
    if not _has_table(con, "fct_leader_reviews"):
        return {}
    rows = _rows(
        con,
        """
        SELECT department_id, period, score, remarks
        FROM marts.fct_leader_reviews
        WHERE period = $quarter
        ORDER BY department_id, remarks
        """,
        params,
    )
    return {row["department_id"]: row for row in rows}


def _complaint_themes(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], limit: int) -> list[Row]:
    """The leading keywords of the period's complaint texts, city-wide (see fct_complaint_themes)."""
    if not _has_table(con, "fct_complaint_themes"):
        return []
    return _rows(
        con,
        """
        SELECT keyword, mentions, complaints, mention_share
        FROM marts.fct_complaint_themes
        WHERE period = $period AND period_type = $period_type AND scope = 'city' AND keyword_rank <= $limit
        ORDER BY keyword_rank
        """,
        {**params, "limit": limit},
    )


# --- context --------------------------------------------------------------------------


def _stylesheet(official: bool = False) -> Markup:
    """bulletin.css, and official_form.css after it for an edition in the official form."""
    css = ""
    for path in (STYLESHEET, OFFICIAL_FORM_STYLESHEET) if official else (STYLESHEET,):
        text = path.read_text(encoding="utf-8")
        if "</" in text:  # would end the <style> element early
            raise ValueError(f"{path} must not contain '</'")
        css += text
    return Markup(css)  # our own files; HTML-escaping would break quoted font names


def _params(edition: Edition, config: BulletinConfig) -> dict[str, Any]:
    trend = edition.trend_months(config.trend_months)
    return {
        "period": edition.period,
        "period_type": edition.period_type,
        "period_end": edition.end,
        "last_month": edition.last_month,
        "previous": edition.previous.period,
        "quarter": Edition.quarter_of(edition.period).period,
        "trend_from": trend[0],
    }


def is_ranked(con: duckdb.DuckDBPyConnection, edition: Edition) -> bool:
    """Whether the marts rank anyone for the edition: without it there is nothing to draft or publish."""
    return bool(
        con.execute(
            "select count(*) from marts.fct_rankings where period = ? and period_type = ?",
            [edition.period, edition.period_type],
        ).fetchall()[0][0]
    )


def catalogue_version_of(con: duckdb.DuckDBPyConnection, edition: Edition) -> str | None:
    """The catalogue version an edition is built on."""
    return _catalogue_version(con, {"period": edition.period, "period_type": edition.period_type})


def names_in_force(con: duckdb.DuckDBPyConnection, edition: Edition) -> tuple[dict[str, Row], dict[str, str]]:
    """Departments (name, peer group) and indicator/node names as the edition shows them."""
    departments = _departments(con, {"period": edition.period, "period_end": edition.end})
    return departments, _node_names(con, {"version": catalogue_version_of(con, edition)})


def _meets_target(value: float | None, target: float | None, direction: str | None) -> bool | None:
    """Judged on the unrounded value: 97.96 against 98 is not met, though the change rounds to 0.0%."""
    if value is None or target is None:
        return None
    return value <= target if direction == "lower" else value >= target


def _change(current: float | None, reference: float | None, direction: str | None) -> Row | None:
    """A change in percent of the reference, with its sense for this indicator."""
    if current is None or reference is None or reference == 0:
        return None
    percent = (current - reference) / abs(reference) * 100
    if round(percent, 1) == 0:
        return {"percent": 0.0, "text": "持平", "sense": "flat"}
    better = (percent > 0) == (direction != "lower")
    return {
        "percent": percent,
        "text": f"{'上升' if percent > 0 else '下降'} {abs(percent):.1f}%",
        "sense": "better" if better else "worse",
    }


def _key_figures(
    figures: Mapping[tuple[str, Any], Row],
    edition: Edition,
    baseline: Edition | None,
    indicators: dict[str, Row],
    wanted: list[str],
) -> list[Row]:
    """Each wanted indicator's city-wide figure against target, last period and baseline."""
    rows = []
    for indicator_id in wanted:
        meta = indicators.get(indicator_id)
        current = figures.get((indicator_id, edition.period))
        if meta is None or current is None:
            continue
        value = current["value"]
        previous = figures.get((indicator_id, edition.previous.period))
        base = figures.get((indicator_id, baseline.period)) if baseline else None
        rows.append(
            {
                "indicator_id": indicator_id,
                "name": meta["indicator_name"],
                "unit": meta["unit"],
                "direction": meta["direction"],
                "value": value,
                "departments": current["departments"],
                "n_obs": current["n_obs"],
                "target": meta["target"],
                "vs_target": _change(value, meta["target"], meta["direction"]),
                "meets_target": _meets_target(value, meta["target"], meta["direction"]),
                "previous": previous["value"] if previous else None,
                "vs_previous": _change(value, previous["value"] if previous else None, meta["direction"]),
                "baseline": base["value"] if base else None,
                "vs_baseline": _change(value, base["value"] if base else None, meta["direction"]),
            }
        )
    return rows


def _band_chart(rows: list[Row], n_ranked: int, most: int) -> dict[str, Any] | None:
    """The rank-band chart of the ranked rows (in rank order), or None when none is
    ranked: the first and last of them when there are more than `most`, with how many
    were left out (the caption says so)."""
    ranked = [row for row in rows if row["rank"] is not None]
    if not ranked:
        return None
    shown = ranked if len(ranked) <= most else ranked[: most // 2] + ranked[len(ranked) - (most - most // 2) :]
    return {
        "spec": charts.rank_bands(shown, n_ranked),
        "first": most // 2,
        "last": most - most // 2,
        "left_out": len(ranked) - len(shown),
    }


def _build_context(con: duckdb.DuckDBPyConnection, edition: Edition, config: BulletinConfig) -> dict[str, Any]:
    params = _params(edition, config)
    version = _catalogue_version(con, params)
    params["version"] = version
    departments = _departments(con, params)
    names = _node_names(con, params)

    def department_name(department_id: str) -> str:
        department = departments.get(department_id)
        return department["department_name"] if department else department_id

    dimensions = _top_dimensions(con, params)
    dimension_scores = _dimension_scores(con, params)
    indicator_values = _indicator_values(con, params)
    scores: dict[str, dict[str, Row]] = {}
    for row in dimension_scores:
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])
        scores.setdefault(row["department_id"], {})[row["dimension"]] = row

    rankings = _rankings(con, params)
    for row in rankings:
        department = departments.get(row["department_id"], {})
        row["department_name"] = department_name(row["department_id"])
        row["peer_group"] = row["peer_group"] or department.get("peer_group") or "未分组"
        row["dimension_scores"] = [scores.get(row["department_id"], {}).get(d, {}).get("score") for d in dimensions]
    n_ranked = len(rankings)

    peer_groups = []
    for index, group in enumerate(sorted({row["peer_group"] for row in rankings}), start=1):
        rows = sorted(
            (row for row in rankings if row["peer_group"] == group),
            key=lambda r: (r["peer_group_rank"] is None, r["peer_group_rank"] or 0, r["department_id"]),
        )
        peer_groups.append({"name": group, "table_id": f"ranking-group-{index}", "rows": rows})

    # Charts are specs here; they are drawn when the edition is written (no warehouse needed).
    band_chart = _band_chart(rankings, n_ranked, config.band_chart_departments)
    for group in peer_groups:
        group["chart"] = _band_chart(group["rows"], n_ranked, config.band_chart_departments)

    warnings = _warnings(con, params)
    for row in warnings:
        row["department_name"] = department_name(row["department_id"])
        row["indicator_name"] = names.get(row["indicator_id"], row["indicator_id"])

    adjustments = _adjustments(con, params)
    for row in adjustments:
        row["department_name"] = department_name(row["department_id"])

    indicators = _indicators(con, params)
    for row in indicators:
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])
    by_indicator = {row["indicator_id"]: row for row in indicators}

    moved = [row for row in rankings if row["rank_change"] is not None]
    improvers = sorted((r for r in moved if r["rank_change"] > 0), key=lambda r: (-r["rank_change"], r["rank"]))
    decliners = sorted((r for r in moved if r["rank_change"] < 0), key=lambda r: (r["rank_change"], r["rank"]))

    voice = config.citizen_voice
    baseline = config.baseline_of(edition)
    figures = _city_figures(
        con,
        params,
        config.headline + voice.indicators,
        [edition.period, edition.previous.period] + ([baseline.period] if baseline else []),
    )
    # The departments doing worst on one indicator (lowest, or highest where lower is better).
    worst = None
    if (worst_on := by_indicator.get(voice.lowest_by or "")) is not None:
        sign = -1 if worst_on["direction"] == "lower" else 1
        worst = {
            "indicator": worst_on,
            "rows": sorted(
                (
                    {
                        "department_id": v["department_id"],
                        "department_name": department_name(v["department_id"]),
                        "value": v["raw_value"],
                        "n_obs": v["n_obs"],
                    }
                    for v in indicator_values
                    if v["indicator_id"] == worst_on["indicator_id"]
                    and v["raw_value"] is not None
                    and v["meets_min_obs"]
                ),
                key=lambda r: (sign * r["value"], r["department_id"]),
            )[: voice.lowest],
        }
    themes = _complaint_themes(con, params, voice.themes)
    sentiment = findings.comment_sentiment(con, params, voice.sentiment_fdr, voice.sentiment_min_comments)
    ranked_ids = {row["department_id"] for row in rankings}
    screens = findings.rating_screens(con, params, current_marks())
    anomalies = findings.indicator_anomalies(con, params)
    for row in anomalies["flagged"]:
        row |= {
            "indicator_name": names.get(row["indicator_id"], row["indicator_id"]),
            "unit": by_indicator.get(row["indicator_id"], {}).get("unit"),
        }
    forecasts = findings.target_forecasts(con, params, config.forecasts.at_risk_below, config.forecasts.listed)
    found = (
        sentiment["flagged"] + screens["flagged"] + forecasts["slipping"] + forecasts["lowest"] + anomalies["flagged"]
    )
    for row in found:
        row |= {"department_name": department_name(row["department_id"]), "ranked": row["department_id"] in ranked_ids}

    quality_files = _quality_files(con, params)
    failed_checks = _failed_checks(con, params)
    title = f"{edition.label}{config.title}"
    return {
        "title": title,
        "issuer": config.issuer,
        "edition": edition,
        "period_label": edition.label,
        "baseline_label": baseline.label if baseline else "未设定",
        "previous_label": edition.previous.label,
        "catalogue_version": version,
        "stylesheet": _stylesheet(config.official_form.enabled),
        "rankings": rankings,
        "n_ranked": n_ranked,
        "dimensions": [{"id": d, "name": names.get(d, d)} for d in dimensions],
        "grade_counts": [(grade, sum(r["grade"] == grade for r in rankings)) for grade in GRADES],
        "headline": _key_figures(figures, edition, baseline, by_indicator, config.headline),
        "band_chart": band_chart,
        "peer_groups": peer_groups,
        "warnings": warnings,
        "red_count": sum(w["level"] == "red" for w in warnings),
        "amber_count": sum(w["level"] == "amber" for w in warnings),
        "adjustments": adjustments,
        "vetoed": [row for row in rankings if row["veto_reason"] is not None],
        "improvers": improvers[: config.movers],
        "decliners": decliners[: config.movers],
        "bottom": [row for row in rankings if row["bottom_flag"]],
        "voice": _key_figures(figures, edition, baseline, by_indicator, voice.indicators),
        "worst": worst,
        "themes": themes,
        "themes_chart": charts.keyword_bars(themes) if themes else None,
        "themes_available": _has_table(con, "fct_complaint_themes"),
        "sentiment": sentiment,
        "sentiment_fdr": voice.sentiment_fdr,
        "sentiment_min_comments": voice.sentiment_min_comments,
        "screens": screens,
        "screens_in_edition": config.rating_screens.show == "edition",
        "anomalies": anomalies,
        "forecasts": forecasts,
        "indicators": indicators,
        "quality_files": quality_files,
        "quality_totals": {
            key: sum(f[key] or 0 for f in quality_files) for key in ("rows_read", "rows_accepted", "rows_quarantined")
        },
        "check_counts": _check_counts(con, params),
        "failed_checks": failed_checks,
        "blocking_failures": sum(c["severity"] != "warning" for c in failed_checks),
        # Department pages
        "department_pages": f"{edition.stem}_departments",
        "trend_months": config.trend_months,
        "_departments": departments,
        "_names": names,
        "_params": params,
        "_by_indicator": by_indicator,
        "_dimension_scores": dimension_scores,
        "_indicator_values": indicator_values,
        "_trend_months": edition.trend_months(config.trend_months),
    }


def _department_contexts(con: duckdb.DuckDBPyConnection, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One page per ranked department: scorecard, 12-month trend, indicators, warnings, review."""
    params, names = context["_params"], context["_names"]
    edition: Edition = context["edition"]
    dimensions = context["dimensions"]
    series_ids = [COMPOSITE] + [d["id"] for d in dimensions]
    series_names = {COMPOSITE: names.get(COMPOSITE, "综合得分")} | {d["id"]: d["name"] for d in dimensions}
    month_keys = [f"{m:%Y-%m}" for m in context["_trend_months"]]

    trends: dict[str, list[Row]] = {}
    for row in _trends(con, params):
        if row["dimension"] in series_names:
            trends.setdefault(row["department_id"], []).append(
                {
                    "month": f"{row['period']:%Y-%m}",
                    "series": series_names[row["dimension"]],
                    "score": row["score"],
                    "dimension": row["dimension"],
                }
            )
    current: dict[tuple[str, str], Row] = {}
    for row in context["_dimension_scores"]:
        current[(row["department_id"], row["dimension"])] = row
    previous = _previous_scores(con, params)
    values: dict[str, list[Row]] = {}
    derivations = derivation.derivations(con, params["period"], params["period_type"])  # raw value → score
    for row in context["_indicator_values"]:
        meta = context["_by_indicator"].get(row["indicator_id"])
        if meta is None:
            continue
        shown = row["raw_value"] if row["meets_min_obs"] else None  # suppressed below the minimum sample
        row |= {
            "indicator_name": meta["indicator_name"],
            "dimension_name": meta["dimension_name"],
            "unit": meta["unit"],
            "target": meta["target"],
            "direction": meta["direction"],
            "min_obs": meta["min_obs"],
            "shown_value": shown,
            "vs_target": _change(shown, meta["target"], meta["direction"]),
            "meets_target": _meets_target(shown, meta["target"], meta["direction"]),
            "derivation": derivations.get((row["department_id"], row["indicator_id"])),
        }
        values.setdefault(row["department_id"], []).append(row)
    warnings_by: dict[str, list[Row]] = {}
    for row in context["warnings"]:
        warnings_by.setdefault(row["department_id"], []).append(row)
    adjustments_by: dict[str, list[Row]] = {}
    for row in context["adjustments"]:
        adjustments_by.setdefault(row["department_id"], []).append(row)
    reviews = _leader_reviews(con, params)

    pages = []
    for ranking in context["rankings"]:
        department_id = ranking["department_id"]
        scorecard = []
        for series in series_ids:
            now = current.get((department_id, series), {})
            before = previous.get((department_id, series))
            score = ranking["composite_score"] if series == COMPOSITE else now.get("score")
            scorecard.append(
                {
                    "series": series,
                    "name": series_names[series],
                    "score": score,
                    "rank": ranking["rank"] if series == COMPOSITE else now.get("rank"),
                    "previous": before,
                    "change": None if score is None or before is None else score - before,
                }
            )
        trend_rows = trends.get(department_id, [])
        # Only series with data are drawn, so the chart has one line per row it lists.
        drawn = [s for s in scorecard if any(r["dimension"] == s["series"] for r in trend_rows)]
        for s in scorecard:
            s["drawn"] = s in drawn
        for index, s in enumerate(drawn):
            s["key"] = charts.series_key(index)
        chart = charts.trend(trend_rows, [s["name"] for s in drawn], month_keys) if trend_rows else None
        pages.append(
            {
                "ranking": ranking,
                "back": f"../{edition.stem}.html#rank-{page_name(department_id)}",
                "scorecard": scorecard,
                "trend_chart": chart,
                "trend_label": f"{month_keys[0]} 至 {month_keys[-1]}",
                "indicator_values": sorted(
                    values.get(department_id, []), key=lambda r: (r["dimension_name"] or "", r["indicator_id"])
                ),
                "warnings": warnings_by.get(department_id, []),
                "adjustments": adjustments_by.get(department_id, []),
                "review": reviews.get(department_id),
                "sentiment": context["sentiment"]["by_department"].get(department_id, []),
                "screen_flags": [f for f in context["screens"]["flagged"] if f["department_id"] == department_id]
                if context["screens_in_edition"]
                else [],
                "forecasts": context["forecasts"]["by_department"].get(department_id, []),
                "review_label": Edition.quarter_of(edition.period).label,
                "anomaly_flags": [f for f in context["anomalies"]["flagged"] if f["department_id"] == department_id],
                "anomalies_available": context["anomalies"]["available"],
            }
        )
    return pages


def _chart_cache() -> Path:
    from pipelines.settings import settings

    return settings().cache_dir / "charts"


# --- rendering ------------------------------------------------------------------------


def _write(path: Path, html: str) -> None:
    # Write then rename, so a reader never sees a half-written page.
    tmp_path = temporary_beside(path)
    tmp_path.write_text(html, encoding="utf-8", newline="\n")
    os.replace(tmp_path, path)


def collect_edition(
    con: duckdb.DuckDBPyConnection, edition: Edition, config: BulletinConfig | None = None
) -> dict[str, Any]:
    """Everything `edition` shows, read from the marts: the edition's context with a
    page context per department, charts as specs. Drawing and writing need no
    warehouse, so a caller can release its lock before `write_edition`."""
    if config is None:
        from pipelines.settings import settings

        config = load_bulletin_config(settings().reference_dir)
    context = _build_context(con, edition, config)
    context |= official_form.edition_context(config, context)  # the form's settings and 要点, or None
    context["pages"] = _department_contexts(con, context)
    for private in (
        "_departments",
        "_names",
        "_params",
        "_by_indicator",
        "_dimension_scores",
        "_indicator_values",
        "_trend_months",
    ):
        del context[private]
    return context


def _draw(chart: Any, cache: Path | None) -> Markup | None:
    return None if chart is None else charts.to_svg(chart, cache)


def _draw_bands(chart: Mapping[str, Any] | None, cache: Path | None) -> dict[str, Any] | None:
    return None if chart is None else dict(chart) | {"svg": charts.to_svg(chart["spec"], cache)}


def write_edition(collected: Mapping[str, Any], out_dir: Path, approval: Mapping[str, Any] | None = None) -> Path:
    """Draw the charts and write the edition and its department pages into `out_dir`;
    return the edition's path. Without `approval` it is a draft, marked on every page;
    with it (approved_by, approved_at, revision, note) it is published."""
    cache = _chart_cache()
    context = dict(collected) | {"approval": approval}
    context["official"] = official_form.issue_marks(collected["official_form"], approval)  # 文号, dates
    context["band_chart"] = _draw_bands(collected["band_chart"], cache)
    context["themes_chart"] = _draw(collected["themes_chart"], cache)
    context["peer_groups"] = [
        group | {"chart": _draw_bands(group["chart"], cache)} for group in collected["peer_groups"]
    ]
    html = ENVIRONMENT.get_template(EDITION_TEMPLATE).render(context)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages_dir = out_dir / context["department_pages"]
    # Departments ranked last time but not now must not keep a stale page.
    if pages_dir.exists():
        shutil.rmtree(pages_dir)
    pages_dir.mkdir()
    template = ENVIRONMENT.get_template(DEPARTMENT_TEMPLATE)
    for page in collected["pages"]:
        page = page | {"trend_chart": _draw(page["trend_chart"], cache)}
        _write(pages_dir / f"{page_name(page['ranking']['department_id'])}.html", template.render(context | page))
    # The internal annex of the rating-gaming screens' flags (bulletin.yaml rating_screens):
    # in the draft edition folder, linked from no page; never in a published revision,
    # which is an archive made to be handed out.
    if approval is None:
        (out_dir / ANNEX_PAGE).parent.mkdir(exist_ok=True)
        _write(out_dir / ANNEX_PAGE, ENVIRONMENT.get_template(ANNEX_TEMPLATE).render(context))
    out_path = out_dir / f"{context['edition'].stem}.html"
    _write(out_path, html)
    return out_path


@contextlib.contextmanager
def drawing(editions: int) -> Iterator[Callable[[Mapping[str, Any], Path], None]]:
    """A `draw(collected, out_dir)` that runs write_edition, for up to `editions` editions;
    the block's end waits for all of them and raises the first failure. Several editions
    (a backfill) are drawn in a pool of processes, each edition as soon as it is handed
    over, while the caller reads the next from the marts: vl-convert holds the GIL,
    and the pool's start-up overlaps the reading."""
    workers = min(editions, os.cpu_count() or 1, 4)
    if workers < 2:
        yield write_edition
        return
    from pipelines.process_tree import worker_pool

    pool = worker_pool(workers)
    futures = []
    try:
        yield lambda collected, out_dir: futures.append(pool.submit(write_edition, collected, out_dir))
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def render_edition(
    con: duckdb.DuckDBPyConnection,
    edition: Edition,
    out_dir: Path,
    approval: Mapping[str, Any] | None = None,
    config: BulletinConfig | None = None,
) -> Path:
    """collect_edition then write_edition: the edition and its department pages in `out_dir`."""
    return write_edition(collect_edition(con, edition, config), out_dir, approval)


def render_monthly_bulletin(
    con: duckdb.DuckDBPyConnection, period: Any, out_dir: Path, approval: Mapping[str, Any] | None = None
) -> Path:
    """The monthly edition of `period` (first day of the month)."""
    if period.day != 1:
        raise ValueError(f"period must be the first day of a month, got {period.isoformat()}")
    return render_edition(con, Edition.month(period), out_dir, approval)
