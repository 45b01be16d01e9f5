"""排名变动原因 (marts.fct_score_changes, docs/methodology.md §9a): the terms of every
change add up to the published change of the composite, and the bulletin says why the
largest movers moved in plain sentences made from them.

`score_change_problems` checks a whole warehouse: for every department and period
ranked in both it and the compared period, for both comparisons (previous, year_ago),
Σ contributions = composite_t − composite_{t−k} of fct_rankings within 0.01, and the
places moved are fct_rankings.rank_change (a year on, the difference of its ranks). It runs on the sample city's runs:
test_pipeline_e2e (three months: the previous period) and
test_indicator_anomalies_planted (fifteen months, slow stage: a year back too). The
sentence tests here need no warehouse; the hand-computed decompositions are dbt unit
tests (dbt_project/models/marts/_unit_tests__score_changes.yml).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import duckdb

from pipelines.publish import move_reasons

TOLERANCE = 0.01


def score_change_problems(con: duckdb.DuckDBPyConnection) -> tuple[list[str], Counter]:
    """What is wrong with fct_score_changes against fct_rankings, and how many
    (department, period) pairs each comparison checked."""
    pairs = con.execute(
        """
        WITH ranked AS (
            SELECT period, period_type, department_id, composite_score, rank, rank_change FROM marts.fct_rankings
        ),
        expected AS (
            SELECT cur.period, cur.period_type, cur.department_id, c.comparison,
                   cur.composite_score - earlier.composite_score AS change,
                   -- a month or quarter on: the published rank_change; a year on, from both ranks
                   CASE WHEN c.comparison = 'previous' THEN cur.rank_change ELSE earlier.rank - cur.rank END
                       AS rank_change
            FROM ranked AS cur
            CROSS JOIN (VALUES ('previous'), ('year_ago')) AS c(comparison)
            JOIN ranked AS earlier
              ON earlier.department_id = cur.department_id AND earlier.period_type = cur.period_type
             AND earlier.period = cur.period - CASE WHEN c.comparison = 'year_ago' THEN INTERVAL 12 MONTH
                                                    WHEN cur.period_type = 'quarter' THEN INTERVAL 3 MONTH
                                                    ELSE INTERVAL 1 MONTH END
        ),
        found AS (
            SELECT period, period_type, department_id, comparison, sum(contribution) AS summed,
                   max(rank_change) AS rank_change,
                   count(DISTINCT term) FILTER (WHERE term_type <> 'indicator') AS named
            FROM marts.fct_score_changes
            GROUP BY ALL
        )
        SELECT e.period, e.period_type, e.department_id, e.comparison, e.change, e.rank_change,
               f.summed, f.rank_change AS found_rank_change, f.named
        FROM expected AS e
        FULL JOIN found AS f USING (period, period_type, department_id, comparison)
        ORDER BY ALL
        """
    ).fetchall()
    problems, checked = [], Counter()
    for period, period_type, department, comparison, change, rank_change, summed, found_rank, named in pairs:
        where = f"{department} {period_type} {period} vs {comparison}"
        if change is None:
            problems.append(f"{where}: a breakdown without both periods ranked")
        elif summed is None:
            problems.append(f"{where}: no breakdown, though both periods are ranked")
        else:
            checked[comparison] += 1
            if abs(summed - change) > TOLERANCE:
                problems.append(f"{where}: terms add up to {summed:.6f}, the composite changed by {change:.6f}")
            if found_rank != rank_change:
                problems.append(f"{where}: rank change {found_rank}, fct_rankings says {rank_change}")
            if named != 6:
                problems.append(f"{where}: {named} named terms, not the six")
    return problems, checked


def assert_score_changes_add_up(duckdb_path: Path, comparisons: set[str]) -> Counter:
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        problems, checked = score_change_problems(con)
    finally:
        con.close()
    assert not problems, "\n".join(problems[:20])
    assert set(checked) == comparisons, checked
    return checked


# --- sentences ---------------------------------------------------------------------------

NAMES = {
    "on_time_rate": "按时办结率",
    "online_rate": "全程网办率",
    "good_review_rate": "好评率",
    "leader_review_score": "领导点评得分",
}


def _term(term: str, contribution: float, change: float | None = None, kind: str = "indicator") -> dict:
    return {
        "term": term,
        "term_type": kind,
        "score_before": None,
        "score_after": None,
        "score_change": change,
        "effective_weight": None,
        "contribution": contribution,
    }


def _change(terms: list[dict], rank_change: int, after: float = 80.0) -> dict:
    total = sum(t["contribution"] for t in terms)
    return {
        "department_id": "D1",
        "comparison": "previous",
        "compared_period": dt.date(2026, 2, 1),
        "composite_before": after - total,
        "composite_after": after,
        "rank_before": 40,
        "rank_after": 40 - rank_change,
        "rank_change": rank_change,
        "catalogue_version": "v1",
        "compared_catalogue_version": "v1",
        "change": total,
        "terms": terms,
        "total": total,
    }


def test_a_riser_is_explained_by_its_three_largest_contributions_upwards():
    change = _change(
        [
            _term("on_time_rate", 3.1, 12.4),
            _term("online_rate", -0.4, -2.0),
            _term("good_review_rate", 0.8, 4.0),
            _term("bonus", 1.0, kind="bonus"),
            _term("reweighting", 0.02, kind="reweighting"),
            _term("clamp", 0.0, kind="clamp"),
        ],
        rank_change=36,
    )
    text = move_reasons.sentence("市交通运输综合行政执法支队", change, NAMES)
    assert text == (
        "市交通运输综合行政执法支队上升 36 位，主要因按时办结率得分提高 12.4 分（贡献 +3.1 分）、"
        "加分（贡献 +1.0 分）、好评率得分提高 4.0 分（贡献 +0.8 分）；综合得分提高 4.52 分。"
    )


def test_a_faller_names_the_named_terms_in_chinese():
    change = _change(
        [
            _term("reweighting", -6.1, kind="reweighting"),
            _term("penalty", -2.0, kind="penalty"),
            _term("catalogue_version", -0.03, kind="catalogue_version"),
            _term("on_time_rate", 0.5, 2.0),
        ],
        rank_change=-29,
    )
    text = move_reasons.sentence("市统计局", change, NAMES)
    assert text == (
        "市统计局下降 29 位，主要因缺项权重重分配（贡献 -6.1 分）、减分（贡献 -2.0 分）、"
        "指标体系版本调整（贡献 -0.03 分）；综合得分下降 7.63 分。"
    )
    assert set(move_reasons.TERM_LABELS.values()) == {
        "缺项权重重分配",
        "几何平均项",
        "得分封顶/保底",
        "加分",
        "减分",
        "指标体系版本调整",
    }


def test_a_rise_with_a_lower_score_says_others_moved_more():
    change = _change([_term("online_rate", -0.3, -5.0), _term("on_time_rate", 0.1, 1.0)], rank_change=2)
    text = move_reasons.sentence("市审计局", change, NAMES)
    assert text.startswith("市审计局上升 2 位，综合得分却下降 0.20 分（名次变化缘于其他部门得分变动更大）")
    assert text.endswith("得分下降主要因全程网办率得分下降 5.0 分（贡献 -0.3 分）。")
    own_score = move_reasons.reason(_term("leader_review_score", 2.3, 11.5), NAMES)
    assert own_score == "领导点评得分提高 11.5 分（贡献 +2.3 分）"  # not 得分得分
    unchanged = move_reasons.sentence("市审计局", _change([_term("online_rate", 0.001, 0.01)], 0), NAMES)
    assert unchanged == "市审计局名次不变，综合得分基本持平（80.00 分）。"
