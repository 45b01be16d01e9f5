"""How an indicator's score follows from its value: the normalisation with the
reference values it used (marts.fct_indicator_reference), and the treatment or
imputation applied (marts.fct_indicator_values, fct_indicator_treatment); and how
the composite follows from the scores: why it moved against the previous period and
a year before, term by term (marts.fct_score_changes, `score_changes`).

Shared by `govperf explain` and the department pages, so both say the same. The
formulas are those of dbt_project/macros/scoring.sql (normalised_scores)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

from pipelines.publish.mart_rows import Row, has_table, rows
from pipelines.publish.score_format import DEFAULT, ScoreFormat
from pipelines.publish.wording import OUTLIER_LABELS

NORMALISATION_NAMES = {
    "min_max": "极差标准化",
    "z_score": "标准分",
    "distance_to_target": "距目标",
    "goalposts": "固定上下限",
    "percentile_rank": "百分位名次",
    "identity": "原值即得分",
}
DIRECTION_NAMES = {"higher": "越高越好", "lower": "越低越好"}


def anchor(indicator_id: str) -> str:
    """The id of an indicator's derivation block on a department page."""
    return "derive-" + re.sub(r"[^A-Za-z0-9_-]", "-", indicator_id)


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def derivations(
    con: duckdb.DuckDBPyConnection,
    period: Any,
    period_type: str,
    department_id: str | None = None,
    shown: ScoreFormat = DEFAULT,
) -> dict[tuple[str, str], Row]:
    """Each (department, indicator) cell of a period: its values, score and reference
    set; scores at the version's decimals and on its scale (`shown`)."""
    if not has_table(con, "fct_indicator_reference"):
        return {}
    rows = con.execute(
        """
        SELECT v.department_id, v.indicator_id, v.raw_value, v.n_obs, v.meets_min_obs, v.scored_value,
               v.score, v.is_imputed, v.imputation, v.is_treated, v.missing_reason,
               i.indicator_name, i.unit, i.min_obs,
               coalesce(r.normalisation, i.normalisation) AS normalisation,
               coalesce(r.direction, i.direction) AS direction,
               r.set_n, r.set_min, r.set_max, r.set_mean, r.set_sd,
               coalesce(r.target, i.target) AS target,
               coalesce(r.goalpost_lo, i.goalpost_lo) AS goalpost_lo,
               coalesce(r.goalpost_hi, i.goalpost_hi) AS goalpost_hi,
               t.outlier_method, t.lower_cap, t.upper_cap,
               (SELECT 1 + count(*) FILTER (WHERE o.scored_value < v.scored_value)
                       + (count(*) FILTER (WHERE o.scored_value = v.scored_value) - 1) / 2.0
                FROM marts.fct_indicator_values AS o
                WHERE o.period = v.period AND o.period_type = v.period_type
                  AND o.indicator_id = v.indicator_id AND o.scored_value IS NOT NULL) AS rank_from_low
        FROM marts.fct_indicator_values AS v
        LEFT JOIN marts.dim_indicator AS i
          ON i.indicator_id = v.indicator_id AND i.catalogue_version IS NOT DISTINCT FROM v.catalogue_version
        LEFT JOIN marts.fct_indicator_reference AS r
          ON r.period = v.period AND r.period_type = v.period_type AND r.indicator_id = v.indicator_id
         AND r.catalogue_version IS NOT DISTINCT FROM v.catalogue_version
        LEFT JOIN marts.fct_indicator_treatment AS t
          ON t.period = v.period AND t.period_type = v.period_type AND t.indicator_id = v.indicator_id
         AND t.catalogue_version IS NOT DISTINCT FROM v.catalogue_version
        WHERE v.period = ? AND v.period_type = ? AND (? IS NULL OR v.department_id = ?)
        ORDER BY v.department_id, v.indicator_id
        """,
        [period, period_type, department_id, department_id],
    )
    columns = [c[0] for c in rows.description]
    cells = {}
    for values in rows.fetchall():
        row = dict(zip(columns, values))
        if row["direction"] == "lower" and row["rank_from_low"] is not None and row["set_n"]:
            row["rank_from_low"] = row["set_n"] + 1 - row["rank_from_low"]  # counted from the worst
        row["steps"] = steps(row, shown)
        row["anchor"] = anchor(row["indicator_id"])
        cells[(row["department_id"], row["indicator_id"])] = row
    return cells


def steps(cell: Mapping[str, Any], shown: ScoreFormat = DEFAULT) -> list[str]:
    """The derivation of a cell's score, line by line, Chinese first."""
    lines = []
    raw, scored = cell["raw_value"], cell["scored_value"]
    if raw is None and not cell["is_imputed"]:
        lines.append(f"原始值：无（{cell['missing_reason'] or '无数据'}），本指标不计分，其权重在上级节点内重新分配")
        return lines
    if raw is None:
        lines.append(f"原始值：无（{cell['missing_reason'] or '无数据'}）")
    else:
        lines.append(f"原始值 {number(raw)}（样本量 {cell['n_obs']}，最低样本量 {cell['min_obs'] or 1}）")
    if cell["is_imputed"]:
        lines.append(f"插补：{cell['imputation']} → {number(cell['scored_value'])}")
    if cell["is_treated"]:
        lines.append(
            f"异常值处理（{OUTLIER_LABELS.get(cell['outlier_method'], cell['outlier_method'])}）：截尾区间 [{number(cell['lower_cap'])}, "
            f"{number(cell['upper_cap'])}] → 计分值 {number(scored)}"
        )
    elif raw is not None:
        lines.append(f"计分值 {number(scored)}（未做异常值处理）")
    if scored is None or cell["score"] is None:
        return lines
    lines.append(normalisation_line(cell, shown))
    return lines


def normalisation_line(cell: Mapping[str, Any], shown: ScoreFormat = DEFAULT) -> str:
    """The normalisation with its reference values filled in, ending in the score (at
    the version's decimals; off 0–100, the 0–100 score mapped onto the scale, §8a)."""
    method, direction, x = cell["normalisation"], cell["direction"], number(cell["scored_value"])
    lo, hi, n = number(cell["set_min"]), number(cell["set_max"]), cell["set_n"]
    name = f"{NORMALISATION_NAMES.get(method, method)}，{DIRECTION_NAMES.get(direction, direction)}"
    score = number(cell["score"], shown.decimals)
    if method == "min_max":
        reference = f"参照集 {n} 个部门，最小值 {lo}，最大值 {hi}"
        if cell["set_min"] == cell["set_max"]:
            formula = "最小值 = 最大值，得 100"
        elif direction == "higher":
            formula = f"100 × ({x} − {lo}) / ({hi} − {lo})"
        else:
            formula = f"100 × ({hi} − {x}) / ({hi} − {lo})"
    elif method == "z_score":
        mean, sd = number(cell["set_mean"]), number(cell["set_sd"])
        reference = f"参照集 {n} 个部门，均值 {mean}，标准差 {sd}"
        sign = "" if direction == "higher" else "−"
        formula = f"50 + 10 × {sign}({x} − {mean}) / {sd}，限定在 0–100"
    elif method == "distance_to_target":
        target = number(cell["target"])
        reference = f"目标值 {target}（参照集 {n} 个部门，不影响得分）"
        if direction == "higher":
            formula = f"100 × {x} / {target}（负值按 0 计，超过目标按 100 计）"
        else:
            formula = f"100 × {target} / {x}（优于目标或值 ≤ 0 按 100 计）"
    elif method == "goalposts":
        g_lo, g_hi = number(cell["goalpost_lo"]), number(cell["goalpost_hi"])
        reference = f"上下限 [{g_lo}, {g_hi}]（参照集 {n} 个部门，不影响得分）"
        if direction == "higher":
            formula = f"100 × ({x} − {g_lo}) / ({g_hi} − {g_lo})（限定在 0–100）"
        else:
            formula = f"100 × ({g_hi} − {x}) / ({g_hi} − {g_lo})（限定在 0–100）"
    elif method == "percentile_rank":
        rank = number(cell["rank_from_low"], 1)
        reference = f"参照集 {n} 个部门，本部门自低到高平均名次 {rank}"
        formula = "100" if n == 1 else f"100 × ({rank} − 1) / ({n} − 1)"
    elif method == "identity":
        return f"标准化：{name}（不截断）；得分 = {x} = {score}"
    else:
        reference, formula = "", "?"
    if shown.domain != [0, 100]:
        scale_lo, scale_hi = (number(v) for v in shown.domain)
        formula += f"，映射到 {shown.scale_text} 分制：{scale_lo} + ({scale_hi} − {scale_lo}) × 上式 / 100"
    return f"标准化：{name}；{reference}；得分 = {formula} = {score}"


# The comparisons of marts.fct_score_changes, in the order a page shows them.
COMPARISONS = ("previous", "year_ago")


def score_changes(
    con: duckdb.DuckDBPyConnection, period: Any, period_type: str, department_id: str | None = None
) -> dict[tuple[str, str], Row]:
    """Why each department's composite moved (marts.fct_score_changes): per (department,
    comparison), the compared period, the composites and ranks of both periods, and
    the terms — each indicator's Δscore × its mean effective weight, and the named
    terms — largest contribution first. The terms add up to the composite's change."""
    if not has_table(con, "fct_score_changes"):
        return {}
    found = rows(
        con,
        """
        SELECT department_id, comparison, compared_period, term, term_type, score_before, score_after,
               score_change, effective_weight, contribution, composite_before, composite_after,
               rank_before, rank_after, rank_change, catalogue_version, compared_catalogue_version
        FROM marts.fct_score_changes
        WHERE period = $period AND period_type = $period_type
          AND ($department_id IS NULL OR department_id = $department_id)
        ORDER BY department_id, comparison, abs(contribution) DESC, term_type <> 'indicator', term
        """,
        {"period": period, "period_type": period_type, "department_id": department_id},
    )
    changes: dict[tuple[str, str], Row] = {}
    for row in found:
        key = (row["department_id"], row["comparison"])
        if key not in changes:
            changes[key] = {name: row[name] for name in CHANGE_COLUMNS} | {
                "change": row["composite_after"] - row["composite_before"],
                "terms": [],
            }
        changes[key]["terms"].append({name: row[name] for name in TERM_COLUMNS})
    for change in changes.values():
        change["total"] = sum(term["contribution"] for term in change["terms"])
    return changes


CHANGE_COLUMNS = (
    "department_id",
    "comparison",
    "compared_period",
    "composite_before",
    "composite_after",
    "rank_before",
    "rank_after",
    "rank_change",
    "catalogue_version",
    "compared_catalogue_version",
)
TERM_COLUMNS = ("term", "term_type", "score_before", "score_after", "score_change", "effective_weight", "contribution")
