"""Points to look into (疑点/关注) for an edition, from the analytics marts: each with
the statistic behind it, never a verdict.

Comment sentiment (fct_comment_sentiment): per source, each department's share of
negative comments against that of all the other departments together. One-sided
binomial test (is the department's share higher than the others' would give by
chance?), Benjamini-Hochberg across the departments of the source, so that among
the departments named at most `sentiment_fdr` are expected to be named by chance.

Rating-gaming screens (fct_anomalies): tested and flagged in dbt (docs/methodology.md
13e); here only put in words, with the analysts' marks (finding_marks.py) beside them.

Forecasts of target attainment (fct_target_forecasts, 13g): the department-indicator
pairs whose probability of meeting the target by the year's end is below
`forecasts.at_risk_below`; first those that meet it today (slipping), then the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from pipelines.publish.mart_rows import Row, has_table, rows

SOURCE_LABELS = {
    "service_transactions": "办件评价留言",
    "survey_responses": "万人评机关留言",
    "hotline_complaints": "12345 热线诉求",
}


def comment_sentiment(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], fdr: float, min_comments: int
) -> dict[str, Any]:
    """{'available', 'city': per source, 'by_department': id -> per source, 'flagged': rows}."""
    if not has_table(con, "fct_comment_sentiment"):
        return {"available": False, "city": [], "by_department": {}, "flagged": []}
    found = rows(
        con,
        """
        SELECT department_id, source, n_scored, n_negative, negative_share
        FROM marts.fct_comment_sentiment
        WHERE period = $period AND period_type = $period_type
        ORDER BY source, department_id
        """,
        params,
    )
    city: dict[str, Row] = {}
    for row in found:
        total = city.setdefault(row["source"], {"source": row["source"], "n_scored": 0, "n_negative": 0})
        total["n_scored"] += row["n_scored"]
        total["n_negative"] += row["n_negative"]
    for total in city.values():
        total["label"] = SOURCE_LABELS.get(total["source"], total["source"])
        total["negative_share"] = 100.0 * total["n_negative"] / total["n_scored"]
    by_department: dict[str, list[Row]] = {}
    for row in found:
        row = row | {"label": SOURCE_LABELS.get(row["source"], row["source"])}
        total = city[row["source"]]
        others_n = total["n_scored"] - row["n_scored"]
        row["others_share"] = 100.0 * (total["n_negative"] - row["n_negative"]) / others_n if others_n else None
        by_department.setdefault(row["department_id"], []).append(row)
    for department_rows in by_department.values():
        department_rows.sort(
            key=lambda r: list(SOURCE_LABELS).index(r["source"]) if r["source"] in SOURCE_LABELS else 99
        )
    return {
        "available": True,
        "city": [city[s] for s in sorted(city, key=list(SOURCE_LABELS).index)],
        "by_department": by_department,
        "flagged": _flag_high_negative(by_department, fdr, min_comments),
    }


def _flag_high_negative(by_department: dict[str, list[Row]], fdr: float, min_comments: int) -> list[Row]:
    from scipy.stats import binom, false_discovery_control

    flagged = []
    candidates: dict[str, list[Row]] = {}
    for department_rows in by_department.values():
        for row in department_rows:
            if row["n_scored"] >= min_comments and row["others_share"] is not None:
                candidates.setdefault(row["source"], []).append(row)
    for source_rows in candidates.values():
        p_values = [
            float(binom.sf(r["n_negative"] - 1, r["n_scored"], min(max(r["others_share"] / 100.0, 1e-9), 1.0)))
            for r in source_rows
        ]
        q_values = false_discovery_control(p_values, method="bh")
        for row, p, q in zip(source_rows, p_values, q_values):
            row["p_value"], row["q_value"] = p, float(q)
            if q <= fdr:
                flagged.append(row)
    return sorted(flagged, key=lambda r: (r["q_value"], -r["negative_share"], r["department_id"]))


# The canonical channel codes, as a reader knows them.
CHANNEL_LABELS = {"online": "网办", "offline": "窗口", "unknown": "渠道不明"}

# Rating-gaming screens (marts.fct_anomalies): what each checks, in the edition's words.
SCREEN_LABELS = {
    "rating_mismatch": "评分与留言不符",
    "rating_uniformity": "“非常满意”比例畸高",
    "rating_fast": "办结后数秒内即评价",
    "rating_burst": "短时间内集中评价",
    "copied_comment": "相同留言反复出现",
}


def _screen_statistic(row: Row) -> str:
    """The statistic behind a flag, in one sentence."""
    screen, n, observed, expected = row["screen"], row["n"], row["observed"], row["expected"]
    share = f"{100.0 * observed / n:.1f}%" if n else "—"
    if screen == "rating_mismatch":
        return f"4-5 分且有留言的 {n} 件中 {observed} 件留言明显负面（{share}），同类部门 {100 * expected:.1f}%"
    if screen == "rating_uniformity":
        return f"{n} 件评价中“非常满意” {observed} 件（{share}），同类部门 {100 * expected:.1f}%"
    if screen == "rating_fast":
        return f"有评价时间的 {n} 件中 {observed} 件在办结后数秒内评价（{share}），同类部门 {100 * expected:.1f}%"
    if screen == "rating_burst":
        kind, _, name = (row["subject"] or "").partition(":")
        subject = f"渠道:{CHANNEL_LABELS.get(name, name)}" if kind == "渠道" else row["subject"]
        return (
            f"{subject}：一个时间窗口内 {observed} 件评价，按工作时间均匀分布每窗口预期 {expected:.2f} 件"
            f"（该项共 {n} 件有评价时间）"
        )
    return f"同一留言（非套话）出现在 {observed} 件办件中，按其他部门的用语预期 {expected:.2f} 件（共 {n} 条留言）"


def rating_screens(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], marks: Mapping[tuple[str, str, str, str], Row]
) -> dict[str, Any]:
    """{'available', 'tested': per screen (label, departments tested, flagged), 'flagged':
    rows with their statistic in words and the analyst's mark, if any}."""
    if not has_table(con, "fct_anomalies"):
        return {"available": False, "tested": [], "flagged": []}
    found = rows(
        con,
        """
        SELECT screen, department_id, subject, n, tried, observed, statistic, expected, p_value, q_value,
               fdr, flagged, strftime(period, '%Y-%m-%d') AS period_iso
        FROM marts.fct_anomalies
        WHERE period = $period AND period_type = $period_type
        ORDER BY screen, q_value, department_id
        """,
        params,
    )
    tested = [
        {
            "screen": screen,
            "label": label,
            "departments": sum(1 for r in found if r["screen"] == screen),
            "flagged": sum(1 for r in found if r["screen"] == screen and r["flagged"]),
        }
        for screen, label in SCREEN_LABELS.items()
    ]
    flagged = []
    for row in found:
        if not row["flagged"]:
            continue
        key = (row["screen"], params["period_type"], row["period_iso"], row["department_id"])
        flagged.append(
            row | {"label": SCREEN_LABELS[row["screen"]], "text": _screen_statistic(row), "mark": marks.get(key)}
        )
    return {"available": True, "tested": tested, "flagged": flagged}


# Anomalies in indicator series (marts.fct_indicator_anomalies, docs/methodology.md §13f):
# what each value was compared with, and which way it moved, in the edition's words.
ANOMALY_REFERENCES = {
    "own_history": "本部门近期各期",
    "seasonal": "本部门同月季节性预期",
    "peer_group": "同类部门同期",
    "city": "全市其他部门同期",
}
ANOMALY_DIRECTIONS = {"better": "向好", "worse": "变差"}


def indicator_anomalies(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Any]:
    """{'available', 'tested': values tested, 'flagged': the flagged rows, each with its
    reference and direction in words}: worse before better, then the largest |z| first."""
    if not has_table(con, "fct_indicator_anomalies"):
        return {"available": False, "tested": 0, "flagged": []}
    found = rows(
        con,
        """
        SELECT department_id, indicator_id, raw_value, kind, reference, direction, expected_low,
               expected_high, centre, scale, z, n_reference, sensitivity, flagged
        FROM marts.fct_indicator_anomalies
        WHERE period = $period AND period_type = $period_type
        ORDER BY direction DESC, abs(z) DESC, department_id, indicator_id, kind
        """,
        params,
    )
    flagged = [
        row
        | {
            "reference_label": ANOMALY_REFERENCES[row["kind"] if row["kind"] == "seasonal" else row["reference"]],
            "direction_label": ANOMALY_DIRECTIONS[row["direction"]],
        }
        for row in found
        if row["flagged"]
    ]
    return {
        "available": True,
        "tested": len({(r["department_id"], r["indicator_id"]) for r in found}),
        "flagged": flagged,
    }


def target_forecasts(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, Any], at_risk_below: float, listed: int
) -> dict[str, Any]:
    """The forecasts made in the edition's last month (fct_target_forecasts): {'available',
    'forecast_period', 'n_forecast', 'n_too_short', 'n_at_risk', 'by_indicator' (counts),
    'slipping': meeting the target now but P(meet) < at_risk_below, 'lowest': the other
    at-risk rows, each least likely first and at most `listed` ('n_slipping', 'n_lowest':
    how many there are),
    'by_department': id -> every row of that department}."""
    empty = {"available": False, "by_department": {}, "slipping": [], "lowest": [], "by_indicator": []}  # no mart yet
    if not has_table(con, "fct_target_forecasts"):
        return empty
    found = rows(
        con,
        """
        SELECT f.department_id, f.indicator_id, i.indicator_name, i.unit, f.last_period, f.last_value,
               f.forecast_period, f.horizon_months, f.n_months, f.forecast_model, f.forecast, f.lo80, f.hi80,
               f.target, f.direction, f.p_meet, f.status, f.reason
        FROM marts.fct_target_forecasts AS f
        LEFT JOIN marts.dim_indicator AS i
            ON i.indicator_id = f.indicator_id AND i.catalogue_version = f.catalogue_version
        WHERE f.period = $last_month
        ORDER BY f.department_id, f.indicator_id
        """,
        params,
    )
    forecast = [r for r in found if r["status"] == "ok"]
    for row in found:
        row["indicator_name"] = row["indicator_name"] or row["indicator_id"]
        row["meets_now"] = _meets(row["last_value"], row["target"], row["direction"])
        row["at_risk"] = row["status"] == "ok" and row["p_meet"] < at_risk_below
    at_risk = sorted((r for r in forecast if r["at_risk"]), key=lambda r: (r["p_meet"], r["department_id"]))
    by_department: dict[str, list[Row]] = {}
    for row in found:
        by_department.setdefault(row["department_id"], []).append(row)
    indicators = sorted({(r["indicator_id"], r["indicator_name"]) for r in found})
    slipping = [r for r in at_risk if r["meets_now"]]
    lowest = [r for r in at_risk if not r["meets_now"]]
    return {
        "available": True,
        "forecast_period": forecast[0]["forecast_period"] if forecast else None,
        "at_risk_below": at_risk_below,
        "n_forecast": len(forecast),
        "n_too_short": sum(r["status"] == "too_short" for r in found),
        "n_at_risk": len(at_risk),
        "by_indicator": [
            {
                "name": name,
                "forecast": sum(r["indicator_id"] == i for r in forecast),
                "at_risk": sum(r["indicator_id"] == i for r in at_risk),
            }
            for i, name in indicators
        ],
        "slipping": slipping[:listed],
        "n_slipping": len(slipping),
        "lowest": lowest[:listed],
        "n_lowest": len(lowest),
        "by_department": by_department,
    }


def _meets(value: float | None, target: float | None, direction: str) -> bool:
    if value is None or target is None:
        return False
    return value >= target if direction == "higher" else value <= target
