"""The text of `govperf explain`, Chinese first like the bulletin, top down."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.publish.derivation import number
from pipelines.publish.score_format import DEFAULT, ScoreFormat

AGGREGATIONS = {"arithmetic": "加权算术平均", "geometric": "加权几何平均（得分先映射到 1–100）"}
ROLES = {"denominator": "分母 / 样本量 (denominator, n_obs)", "numerator": "分子 (numerator)", "none": "筛选 (filter)"}


def render(explanation: Mapping[str, Any]) -> str:
    lines: list[str] = []
    r = explanation["ranking"]
    shown: ScoreFormat = explanation.get("score_format") or DEFAULT  # the version's decimals and scale
    lines.append(
        f"{explanation['department_name']}（{explanation['department_id']}）· {explanation['period_label']}"
        f"（{explanation['period']}）"
    )
    lines.append("")
    lines.append(
        f"排名 (rank)：第 {r['rank']} 名 / 共 {r['n_ranked']} 个部门 —— 按综合得分保留{shown.rank_decimals_text}小数 "
        f"{r['composite_rounded']:.{shown.rank_decimals}f} 排序，得分更高的部门 {r['departments_ahead']} 个，并列{shown.ties_text}"
    )
    lines.append(f"等次 (grade)：{r['grade']}" + (f"（一票否决：{r['veto_reason']}）" if r["veto_reason"] else ""))
    lines.append(
        f"综合得分 (composite) = 加权得分 {number(r['base_score'])} + 加减分 {number(r['bonus_points'])}"
        f"（已按上限封顶，结果限定在 {shown.scale_text}）= {number(r['composite_score'], max(4, shown.decimals))}"
    )
    for item in r["adjustments"]:
        lines.append(
            f"    {item['kind']} {number(item['points'])}：{item['reason']}"
            f"（依据 {item['evidence_ref'] or '—'}；文件 {item['file_hash']} 第 {item['source_line']} 行）"
        )
    lines.append("")
    if explanation.get("built_up"):
        _built_up(explanation["built_up"], lines)
    else:
        _tree(explanation["tree"], lines, depth=0, digits=shown.decimals)
    for indicator in explanation["indicators"]:
        lines.append("")
        _indicator(indicator, lines, shown.decimals)
    return "\n".join(lines) + "\n"


def _built_up(built: Mapping[str, Any], lines: list[str]) -> None:
    """A year built up from its periods (docs/methodology.md §9b)."""
    periods = "、".join(f"{p['label']} {number(p['base_score'], 4)}" for p in built["periods"]) or "—"
    lines.append(
        f"加权得分 (base) 由各期得分合成（逐期合成，§9b）：B = 各期加减分前得分按目录权重的加权平均 = {number(built['built_from'], 4)}"
    )
    lines.append(f"  各期得分：{periods}")
    if built["annual_part"] is None:
        lines.append(f"  无仅年度指标的得分：加权得分 = B = {number(built['base_score'], 4)}")
    elif built["built_from"] is None:
        lines.append(f"  无各期得分：加权得分 = 仅年度指标的年度得分 A = {number(built['base_score'], 4)}")
    else:
        share = built["annual_share"]
        lines.append(
            f"  A = 仅年度指标的年度得分 {number(built['annual_part'], 4)}，其权重份额 s = {number(share, 4)}："
            f"加权得分 = (1 − s) × B + s × A = {number(1 - share, 4)} × {number(built['built_from'], 4)}"
            f" + {number(share, 4)} × {number(built['annual_part'], 4)} = {number(built['base_score'], 4)}"
        )


def _tree(node: Mapping[str, Any], lines: list[str], depth: int, digits: int = 2) -> None:
    """The node and its children; children's scores at `digits` (the version's decimals shown)."""
    pad = "  " * depth
    terms = " + ".join(
        f"{number(c['effective_weight'], 4)} × {number(c['score'], digits)}"
        for c in node["children"]
        if c["score"] is not None
    )
    missing = [c["name"] for c in node["children"] if c["score"] is None]
    lines.append(
        f"{pad}{node['name']}（{node['node_id']}）= {number(node['score'], 4)}"
        f" = {AGGREGATIONS.get(node['aggregation'], node['aggregation'])}：{terms or '—'}"
    )
    if missing:
        lines.append(f"{pad}  （无得分、权重已在本节点内重新分配：{'、'.join(missing)}）")
    for child in node["children"]:
        if child["kind"] == "aggregate":
            _tree(child, lines, depth + 1, digits)
        else:
            lines.append(
                f"{pad}  · {child['name']}（{child['node_id']}）权重 {number(child['weight'])}"
                f" → 实际权重 {number(child['effective_weight'], 4)}，得分 {number(child['score'], digits)}"
            )


def _indicator(indicator: Mapping[str, Any], lines: list[str], digits: int = 2) -> None:
    lines.append(f"指标 {indicator['name']}（{indicator['indicator_id']}）得分 {number(indicator['score'], digits)}")
    for step in indicator["derivation"]:
        lines.append(f"  {step}")
    lines.append(f"  公式 (formula)：{indicator['formula_label']}")
    for part in indicator["parts"]:
        unit = f"，按 {part['unit']} 计数" if part["unit"] else ""
        lines.append(f"  来源 {part['source']}（{part['relation']}）：本期本部门 {part['rows_considered']} 行{unit}")
        for step in part["steps"]:
            lines.append(
                f"    {step['step']}. {step['label']}：{step['count']}　[{ROLES[step['role']]}；{step['predicate']}]"
            )
        for file in part["files"]:
            archived = "" if file["archived"] else "（存档文件缺失！）"
            lines.append(f"    文件 {file['file_name']}  sha256 {file['file_hash']}")
            lines.append(f"      存档原件 (archive)：{file['archive_path']}{archived}")
            lines.append(f"      计入的行 (lines)：{line_ranges(file['lines'])}")
            if file["numerator_lines"] and file["numerator_lines"] != file["lines"]:
                lines.append(f"      其中计入分子 (numerator)：{line_ranges(file['numerator_lines'])}")
    if not indicator["parts"]:
        lines.append("  （本指标无逐行证据）")


def line_ranges(lines: list[int]) -> str:
    """2, 3, 4, 7 → '2–4, 7' (every line, shortened)."""
    ordered = sorted(set(lines))
    spans: list[str] = []
    start = previous = None
    for line in ordered:
        if start is None:
            start = previous = line
        elif line == previous + 1:
            previous = line
        else:
            spans.append(f"{start}" if start == previous else f"{start}–{previous}")
            start = previous = line
    if start is not None:
        spans.append(f"{start}" if start == previous else f"{start}–{previous}")
    return ", ".join(spans) + f"（共 {len(ordered)} 行）"
