"""排名变动原因: why a department moved, in plain Chinese sentences generated from
marts.fct_score_changes (read through derivation.score_changes), for the edition's
largest movers and for each department page:

    市交通运输综合行政执法支队上升 36 位，主要因按时办结率得分提高 12.4 分（贡献 +3.1 分）、
    全程网办率得分提高 8.0 分（贡献 +1.2 分）、加分（贡献 +1.0 分）；综合得分提高 5.63 分。

The places moved are fct_rankings.rank_change (or, a year on, the ranks of both
periods); the reasons are the terms whose contributions to the composite's change
are largest in the direction it changed. The terms add up to the change exactly
(docs/methodology.md §9a)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from pipelines.publish import derivation
from pipelines.publish.config import Edition
from pipelines.publish.mart_rows import Row
from pipelines.publish.score_format import DEFAULT, ScoreFormat

# The named terms of fct_score_changes, as a reader sees them.
TERM_LABELS = {
    "reweighting": "缺项权重重分配",
    "geometric": "几何平均项",
    "clamp": "得分封顶/保底",
    "bonus": "加分",
    "penalty": "减分",
    "catalogue_version": "指标体系版本调整",
}
COMPARISON_LABELS = {"previous": "较上期", "year_ago": "较上年同期"}
BEFORE_LABELS = {"previous": "上期", "year_ago": "上年同期"}
# Reasons named in a sentence.
REASONS = 3


def negligible(shown: ScoreFormat = DEFAULT) -> float:
    """The least contribution (points) named as a reason, and the least change of the
    composite not called 持平: half its last digit shown (0.005 at 2 decimals)."""
    return 0.5 / 10**shown.decimals


def term_label(term: Mapping[str, Any], names: Mapping[str, str]) -> str:
    if term["term_type"] == "indicator":
        return names.get(term["term"], term["term"])
    return TERM_LABELS.get(term["term_type"], term["term"])


def points(value: float, shown: ScoreFormat = DEFAULT) -> str:
    """A contribution, signed, to one decimal fewer than scores are shown (one on the
    default 0–100 at 2 decimals), all of them when the fewer would show 0."""
    brief = shown.decimals - 1
    return f"{value:+.{brief}f}" if abs(value) >= 0.5 / 10**brief else f"{value:+.{shown.decimals}f}"


def reason(term: Mapping[str, Any], names: Mapping[str, str], shown: ScoreFormat = DEFAULT) -> str:
    """One term as a reason: '按时办结率得分提高 12.4 分（贡献 +3.1 分）', '加分（贡献 +1.0 分）'."""
    label = term_label(term, names)
    contribution = points(term["contribution"], shown)
    if term["term_type"] == "indicator" and term["score_change"]:
        verb = "提高" if term["score_change"] > 0 else "下降"
        score = "" if label.endswith("得分") else "得分"  # 领导点评得分提高, not 领导点评得分得分提高
        return f"{label}{score}{verb} {abs(term['score_change']):.{shown.decimals - 1}f} 分（贡献 {contribution} 分）"
    return f"{label}（贡献 {contribution} 分）"


def rank_move(rank_change: int | None) -> str:
    if not rank_change:
        return "名次不变"
    return f"上升 {rank_change} 位" if rank_change > 0 else f"下降 {-rank_change} 位"


def main_terms(change: Mapping[str, Any], count: int = REASONS, shown: ScoreFormat = DEFAULT) -> list[Row]:
    """The terms that moved the composite most in the direction it moved."""
    direction = 1 if change["change"] > 0 else -1
    along = sorted(
        (t for t in change["terms"] if t["contribution"] * direction > 0),
        key=lambda t: (-abs(t["contribution"]), t["term_type"] != "indicator", t["term"]),
    )
    named = [t for t in along if abs(t["contribution"]) >= negligible(shown)]
    return (named or along)[:count]


def explanation(
    change: Mapping[str, Any],
    names: Mapping[str, str],
    rank_change: int | None = None,
    shown: ScoreFormat = DEFAULT,
) -> str:
    """The sentence after the department's name: '上升 36 位，主要因…；综合得分提高 5.63 分。'
    Scores and their change at the version's decimals (`shown`)."""
    moved = change["rank_change"] if rank_change is None else rank_change
    move, delta = rank_move(moved), change["change"]
    if abs(delta) < negligible(shown):
        return f"{move}，综合得分基本持平（{shown.score(change['composite_after'])} 分）。"
    verb = "提高" if delta > 0 else "下降"
    reasons = "、".join(reason(term, names, shown) for term in main_terms(change, shown=shown))
    amount = shown.magnitude(delta)
    if moved and (moved > 0) != (delta > 0):
        return f"{move}，综合得分却{verb} {amount} 分（名次变化缘于其他部门得分变动更大），得分{verb}主要因{reasons}。"
    if not moved:
        return f"{move}，综合得分{verb} {amount} 分，主要因{reasons}。"
    return f"{move}，主要因{reasons}；综合得分{verb} {amount} 分。"


def sentence(
    department_name: str,
    change: Mapping[str, Any],
    names: Mapping[str, str],
    rank_change: int | None = None,
    shown: ScoreFormat = DEFAULT,
) -> str:
    return department_name + explanation(change, names, rank_change, shown)


def breakdown(
    change: Mapping[str, Any],
    names: Mapping[str, str],
    period_type: str,
    department_name: str,
    shown: ScoreFormat = DEFAULT,
) -> Row:
    """One comparison of a department page: its sentence and its table, every indicator
    and each named term that is not nil, largest contribution first."""
    comparison = change["comparison"]
    compared = Edition(period_type, change["compared_period"])  # type: ignore[arg-type]
    rows = [
        dict(term) | {"label": term_label(term, names), "anchor": derivation.anchor(term["term"])}
        for term in change["terms"]
        if term["term_type"] == "indicator" or abs(term["contribution"]) >= negligible(shown) / 10
    ]
    return dict(change) | {
        "label": f"{COMPARISON_LABELS[comparison]}（{compared.label}）",
        "before_label": f"{BEFORE_LABELS[comparison]}（{compared.label}）",
        "sentence": sentence(department_name, change, names, shown=shown),
        "rows": rows,
        "version_changed": change["catalogue_version"] != change["compared_catalogue_version"],
    }


def department_breakdowns(
    changes: Mapping[tuple[str, str], Row],
    department_id: str,
    department_name: str,
    names: Mapping[str, str],
    period_type: str,
    shown: ScoreFormat = DEFAULT,
) -> list[Row]:
    """A department page's breakdowns, against the previous period then a year before."""
    return [
        breakdown(changes[(department_id, comparison)], names, period_type, department_name, shown)
        for comparison in derivation.COMPARISONS
        if (department_id, comparison) in changes
    ]


def movers(
    con: duckdb.DuckDBPyConnection,
    period: Any,
    period_type: str,
    ranked: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    changes: Mapping[tuple[str, str], Row] | None = None,
    shown: ScoreFormat = DEFAULT,
) -> list[Row]:
    """The edition's largest movers (rows of fct_rankings with department_name), each
    with its sentence against the previous period and its top reasons."""
    if changes is None:
        changes = derivation.score_changes(con, period, period_type)
    out = []
    for row in ranked:
        change = changes.get((row["department_id"], "previous"))
        if change is None:
            continue
        top = main_terms(change, shown=shown)
        out.append(
            {
                "department_id": row["department_id"],
                "department_name": row["department_name"],
                "rank": row["rank"],
                "rank_change": row["rank_change"],
                "change": change["change"],
                "explanation": explanation(change, names, row["rank_change"], shown),
                "sentence": sentence(row["department_name"], change, names, row["rank_change"], shown),
                "reasons": [dict(term) | {"label": term_label(term, names)} for term in top],
            }
        )
    return out
