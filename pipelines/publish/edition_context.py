"""What an edition shows, gathered from the marts: the edition's context and one page
context per ranked department, charts as Vega-Lite specs (drawn later, without the
warehouse, by bulletin.write_edition)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from pipelines.appeals.store import STATUS_LABELS as APPEAL_STATUS_LABELS
from pipelines.publish import annual, charts, derivation, edition_rows, findings, move_reasons, official_form, wording
from pipelines.publish.config import BulletinConfig, Edition, load_bulletin_config
from pipelines.publish.finding_marks import current_marks
from pipelines.publish.mart_rows import Row
from pipelines.publish.mart_rows import has_table as _has_table

COMPOSITE = "composite"


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


def build_context(con: duckdb.DuckDBPyConnection, edition: Edition, config: BulletinConfig) -> dict[str, Any]:
    params = edition_rows.query_params(edition, config)
    version = edition_rows.catalogue_version(con, params)
    params["version"] = version
    shown = edition_rows.score_format(con, params)  # scores as the version shows them (§8a)
    departments = edition_rows.departments(con, params)
    names = edition_rows.node_names(con, params)

    def department_name(department_id: str) -> str:
        department = departments.get(department_id)
        return department["department_name"] if department else department_id

    dimensions = edition_rows.top_dimensions(con, params)
    dimension_scores = edition_rows.dimension_scores(con, params)
    indicator_values = edition_rows.indicator_values(con, params)
    scores: dict[str, dict[str, Row]] = {}
    for row in dimension_scores:
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])
        scores.setdefault(row["department_id"], {})[row["dimension"]] = row

    rankings = edition_rows.rankings(con, params)
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

    warnings = edition_rows.warnings(con, params)
    for row in warnings:
        row["department_name"] = department_name(row["department_id"])
        row["indicator_name"] = names.get(row["indicator_id"], row["indicator_id"])

    # Grouped by department, most red first: one line per department, not one per warning.
    grouped: dict[str, Row] = {}
    for row in warnings:
        group = grouped.setdefault(
            row["department_id"],
            {"department_id": row["department_id"], "department_name": row["department_name"], "red": [], "amber": []},
        )
        # An indicator warned twice at one level (its threshold and its change) is named once.
        named = group[row["level"] if row["level"] in ("red", "amber") else "amber"]
        same = next((w for w in named if w["indicator_id"] == row["indicator_id"]), None)
        if same is None:
            named.append({"indicator_id": row["indicator_id"], "indicator_name": row["indicator_name"], "messages": []})
            same = named[-1]
        if row["message"]:
            same["messages"].append(row["message"])
    warning_groups = sorted(grouped.values(), key=lambda g: (-len(g["red"]), -len(g["amber"]), g["department_id"]))

    adjustments = edition_rows.adjustments(con, params)
    for row in adjustments:
        row["department_name"] = department_name(row["department_id"])

    appeals = edition_rows.appeals(con, params)
    for row in appeals:
        row["subject_label"] = f"案件 {row['case_id']}" if row["subject"] == "case" else row["indicator_name"]
        row["status_label"] = APPEAL_STATUS_LABELS[row["status"]]

    indicators = edition_rows.indicators(con, params)
    for row in indicators:
        row["dimension_name"] = names.get(row["dimension"], row["dimension"])
    by_indicator = {row["indicator_id"]: row for row in indicators}

    moved = [row for row in rankings if row["rank_change"] is not None]
    improvers = sorted((r for r in moved if r["rank_change"] > 0), key=lambda r: (-r["rank_change"], r["rank"]))
    decliners = sorted((r for r in moved if r["rank_change"] < 0), key=lambda r: (r["rank_change"], r["rank"]))
    # Why they moved (排名变动原因): the change of each composite split into its terms.
    score_changes = derivation.score_changes(con, params["period"], params["period_type"])
    reasons = {
        direction: move_reasons.movers(
            con, params["period"], params["period_type"], rows[: config.movers], names, score_changes, shown
        )
        for direction, rows in (("up", improvers), ("down", decliners))
    }

    voice = config.citizen_voice
    baseline = config.baseline_of(edition)
    figures = edition_rows.city_figures(
        con,
        params,
        config.headline + voice.indicators,
        [edition.period, edition.previous.period, edition.year_ago.period] + ([baseline.period] if baseline else []),
    )
    # The departments doing worst on one indicator (lowest, or highest where lower is
    # better), among those with the list's own minimum sample behind their value.
    worst = None
    if (worst_on := by_indicator.get(voice.lowest_by or "")) is not None:
        sign = -1 if worst_on["direction"] == "lower" else 1
        candidates = [
            v
            for v in indicator_values
            if v["indicator_id"] == worst_on["indicator_id"] and v["raw_value"] is not None and v["meets_min_obs"]
        ]
        listed = [v for v in candidates if (v["n_obs"] or 0) >= voice.min_sample]
        worst = {
            "indicator": worst_on,
            "min_sample": voice.min_sample,
            "left_out": len(candidates) - len(listed),
            "rows": sorted(
                (
                    {
                        "department_id": v["department_id"],
                        "department_name": department_name(v["department_id"]),
                        "value": v["raw_value"],
                        "n_obs": v["n_obs"],
                    }
                    for v in listed
                ),
                key=lambda r: (sign * r["value"], r["department_id"]),
            )[: voice.lowest],
        }
    themes = edition_rows.complaint_themes(con, params, voice.themes)
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

    quality_files = edition_rows.quality_files(con, params)
    failed_checks = edition_rows.failed_checks(con, params)
    title = f"{edition.label}{config.annual_title if edition.period_type == 'year' else config.title}"
    return {
        "title": title,
        "issuer": config.issuer,
        "edition": edition,
        "period_label": edition.label,
        "baseline_label": baseline.label if baseline else ("本期即基期" if config.baseline else "未设定"),
        "previous_label": edition.previous.label,
        "year_ago_label": edition.year_ago.label,
        "catalogue_version": version,
        "score_format": shown,
        "rankings": rankings,
        "n_ranked": n_ranked,
        "dimensions": [{"id": d, "name": names.get(d, d)} for d in dimensions],
        "grade_counts": [(grade, sum(r["grade"] == grade for r in rankings)) for grade in wording.GRADES],
        "headline": wording.key_figures(figures, edition, baseline, by_indicator, config.headline),
        "band_chart": band_chart,
        "peer_groups": peer_groups,
        "warnings": warnings,
        "warning_groups": warning_groups,
        "red_count": sum(w["level"] == "red" for w in warnings),
        "amber_count": sum(w["level"] == "amber" for w in warnings),
        "adjustments": adjustments,
        "appeals": appeals,
        "appeals_available": _has_table(con, "fct_appeals"),
        "vetoed": [row for row in rankings if row["veto_reason"] is not None],
        "improvers": improvers[: config.movers],
        "decliners": decliners[: config.movers],
        "move_reasons": reasons,
        "move_reasons_available": _has_table(con, "fct_score_changes"),
        "bottom": [row for row in rankings if row["bottom_flag"]],
        "voice": wording.key_figures(figures, edition, baseline, by_indicator, voice.indicators),
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
        "check_counts": edition_rows.check_counts(con, params),
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
        "_score_changes": score_changes,
    }


def department_contexts(con: duckdb.DuckDBPyConnection, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One page per ranked department: scorecard, 12-month trend, indicators, warnings, review."""
    params, names = context["_params"], context["_names"]
    edition: Edition = context["edition"]
    dimensions = context["dimensions"]
    series_ids = [COMPOSITE] + [d["id"] for d in dimensions]
    series_names = {COMPOSITE: names.get(COMPOSITE, "综合得分")} | {d["id"]: d["name"] for d in dimensions}
    month_keys = [f"{m:%Y-%m}" for m in context["_trend_months"]]

    trends: dict[str, list[Row]] = {}
    for row in edition_rows.trends(con, params):
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
    previous = edition_rows.previous_scores(con, params)
    values: dict[str, list[Row]] = {}
    # raw value → score, at the version's decimals and on its scale
    derivations = derivation.derivations(con, params["period"], params["period_type"], shown=context["score_format"])
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
            "vs_target": wording.change(
                shown, meta["target"], meta["direction"], meta["change_basis"], against_target=True
            ),
            "meets_target": wording.meets_target(shown, meta["target"], meta["direction"]),
            "derivation": derivations.get((row["department_id"], row["indicator_id"])),
        }
        values.setdefault(row["department_id"], []).append(row)
    warnings_by: dict[str, list[Row]] = {}
    for row in context["warnings"]:
        warnings_by.setdefault(row["department_id"], []).append(row)
    adjustments_by: dict[str, list[Row]] = {}
    for row in context["adjustments"]:
        adjustments_by.setdefault(row["department_id"], []).append(row)
    reviews = edition_rows.leader_reviews(con, params)

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
        shown = context["score_format"]
        chart = charts.trend(trend_rows, [s["name"] for s in drawn], month_keys, shown.domain) if trend_rows else None
        pages.append(
            {
                "ranking": ranking,
                "back": f"../{edition.stem}.html#rank-{wording.page_name(department_id)}",
                "scorecard": scorecard,
                "trend_chart": chart,
                "trend_label": f"{month_keys[0]} 至 {month_keys[-1]}",
                "indicator_values": sorted(
                    values.get(department_id, []), key=lambda r: (r["dimension_name"] or "", r["indicator_id"])
                ),
                "warnings": warnings_by.get(department_id, []),
                "adjustments": adjustments_by.get(department_id, []),
                "appeals": [a for a in context["appeals"] if a["department_id"] == department_id],
                "previous_year": context["annual"]["previous"].get(department_id) if context["annual"] else None,
                "review": reviews.get(department_id),
                "sentiment": context["sentiment"]["by_department"].get(department_id, []),
                "screen_flags": [f for f in context["screens"]["flagged"] if f["department_id"] == department_id]
                if context["screens_in_edition"]
                else [],
                "forecasts": context["forecasts"]["by_department"].get(department_id, []),
                "review_label": Edition.quarter_of(edition.last_month).label,
                "anomaly_flags": [f for f in context["anomalies"]["flagged"] if f["department_id"] == department_id],
                "anomalies_available": context["anomalies"]["available"],
                # extends the raw value → score block: why the composite moved, term by term
                "score_changes": move_reasons.department_breakdowns(
                    context["_score_changes"],
                    department_id,
                    ranking["department_name"],
                    names,
                    edition.period_type,
                    shown,
                ),
            }
        )
    return pages


def collect_edition(
    con: duckdb.DuckDBPyConnection, edition: Edition, config: BulletinConfig | None = None
) -> dict[str, Any]:
    """Everything `edition` shows, read from the marts: the edition's context with a
    page context per department, charts as specs. Drawing and writing need no
    warehouse, so a caller can release its lock before `write_edition`."""
    if config is None:
        from pipelines.settings import settings

        config = load_bulletin_config(settings().reference_dir)
    context = build_context(con, edition, config)
    context |= official_form.edition_context(config, context)  # the form's settings and 要点, or None
    # 年度绩效考核: the quarters beside the year, last year's grades, 优秀 and 不合格
    yearly = edition.period_type == "year"
    context["annual"] = annual.annual_context(con, context["_params"], context["rankings"]) if yearly else None
    context["pages"] = department_contexts(con, context)
    for private in (
        "_departments",
        "_names",
        "_params",
        "_by_indicator",
        "_dimension_scores",
        "_indicator_values",
        "_trend_months",
        "_score_changes",
    ):
        del context[private]
    return context
