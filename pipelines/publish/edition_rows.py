"""The bulletin's reads of the marts: one function per query, each returning plain rows.

Reads only schema ``marts``, through mart_rows; every query has a full ORDER BY, so
the same marts give the same rows in the same order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from pipelines.publish.config import BulletinConfig, Edition
from pipelines.publish.mart_rows import Row
from pipelines.publish.mart_rows import columns as _columns
from pipelines.publish.mart_rows import has_table as _has_table
from pipelines.publish.mart_rows import rows as _rows
from pipelines.publish.score_format import ScoreFormat

# The version's settings a score is shown by (methodology §8a), as dim_catalogue_node holds them.
SCORE_SETTINGS = ("rank_decimals", "round_mode", "scale_lo", "scale_hi", "rank_ties")


def catalogue_version(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> str | None:
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


def score_format(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> ScoreFormat:
    """How the version `$version` shows its scores: its composite node's scale,
    rank_decimals and round_mode; the defaults for settings an older warehouse lacks."""
    present = [c for c in SCORE_SETTINGS if c in _columns(con, "dim_catalogue_node")]
    if not present:
        return ScoreFormat()
    rows = _rows(
        con,
        f"""
        SELECT {", ".join(present)} FROM marts.dim_catalogue_node
        WHERE catalogue_version IS NOT DISTINCT FROM $version AND level = 0
        ORDER BY node_id
        LIMIT 1
        """,
        params,
    )
    return ScoreFormat.of(**rows[0]) if rows else ScoreFormat()


def departments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
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


def node_names(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, str]:
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


def top_dimensions(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[str]:
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


def rankings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def warnings(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def adjustments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


# The appeals an edition lists: those about its months, and those about its whole period.
APPEALS_OF_EDITION = "period between $period and $last_month and (period_type = 'month' or period_type = $period_type)"


def appeals(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    """申诉复核: the edition's appeals in filing order, with their decisions."""
    if not _has_table(con, "fct_appeals"):
        return []
    return _rows(
        con,
        f"""
        SELECT appeal_id, period_key, department_id, department_name, subject, indicator_name, case_id,
               reason, evidence, filed_by, filed_at, status, decided_by, decided_at, decision_note,
               resubmitted_at, resubmitted_file, effect
        FROM marts.fct_appeals
        WHERE {APPEALS_OF_EDITION}
        ORDER BY appeal_id
        """,
        params,
    )


def quality_files(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def check_counts(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> Row:
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


def failed_checks(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def indicators(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
    return _rows(
        con,
        """
        SELECT indicator_id, indicator_name, dimension, direction, weight, unit, change_basis,
               normalisation, target, min_obs, outlier_method, missing_method, max_lookback
        FROM marts.dim_indicator
        WHERE catalogue_version IS NOT DISTINCT FROM $version
        ORDER BY dimension, indicator_id
        """,
        params,
    )


def dimension_scores(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def city_figures(
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


def indicator_values(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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
def trends(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> list[Row]:
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


def previous_scores(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[tuple[str, str], float]:
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


def leader_reviews(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Row]:
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


def complaint_themes(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], limit: int) -> list[Row]:
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


def query_params(edition: Edition, config: BulletinConfig) -> dict[str, Any]:
    trend = edition.trend_months(config.trend_months)
    return {
        "period": edition.period,
        "period_type": edition.period_type,
        "period_end": edition.end,
        "last_month": edition.last_month,
        "previous": edition.previous.period,
        "year_ago": edition.year_ago.period,
        "quarter": Edition.quarter_of(edition.last_month).period,  # a year's: its fourth
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
    return catalogue_version(con, {"period": edition.period, "period_type": edition.period_type})


def names_in_force(con: duckdb.DuckDBPyConnection, edition: Edition) -> tuple[dict[str, Row], dict[str, str]]:
    """Departments (name, peer group) and indicator/node names as the edition shows them."""
    in_force = departments(con, {"period": edition.period, "period_end": edition.end})
    return in_force, node_names(con, {"version": catalogue_version_of(con, edition)})
