"""公文格式: an edition as an official document after GB/T 9704 (docs/bulletin_form.md).

The edition's context gains, when bulletin.yaml `official_form` is enabled, the form's
settings and a one-page 要点 (key points): grade counts, the top and bottom five,
the key figures against target, and three to five findings written as sentences
from the data. The marks that depend on the approval (文号, the 落款's date, the
版记's printing date) are made when the edition is written: from the approval
record, or placeholders in a draft. Nothing comes from the clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.publish.config import BulletinConfig, Edition
from pipelines.publish.score_format import DEFAULT, ScoreFormat

DIGITS = "〇一二三四五六七八九"
LISTED = 5  # departments in each of the top and bottom lists
KEY_FIGURES = 6  # key figures the 要点 page shows at most (the first in bulletin.yaml headline): one page
NAMED = 3  # departments or indicators a finding names at most
DRAFT_NUMBER = "（草稿，待审定后编号）"
DRAFT_DATE = "（审定后填写）"


# --- dates ----------------------------------------------------------------------------


def chinese_number(n: int) -> str:
    """1-99 as a Chinese numeral: 十, 十一, 二十, 二十一, 三十一."""
    if not 1 <= n <= 99:
        raise ValueError(f"{n} is not between 1 and 99")
    tens, units = divmod(n, 10)
    return (DIGITS[tens] if tens > 1 else "") + ("十" if tens else "") + (DIGITS[units] if units else "")


def chinese_date(day: dt.date) -> str:
    """二〇二六年四月二十日: the year digit by digit, month and day as numbers."""
    year = "".join(DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{chinese_number(day.month)}月{chinese_number(day.day)}日"


def arabic_date(day: dt.date) -> str:
    """2026年4月20日: no leading zeros (GB/T 9704-2012 7.3.5.4)."""
    return f"{day.year}年{day.month}月{day.day}日"


def approval_day(approval: Mapping[str, Any]) -> dt.date:
    """The day of the approval record's approved_at (YYYY-MM-DD HH:MM)."""
    return dt.date.fromisoformat(str(approval["approved_at"])[:10])


# --- the form's settings and marks -------------------------------------------------------


def form_settings(config: BulletinConfig, edition: Edition) -> dict[str, Any] | None:
    """What the templates need of bulletin.yaml official_form; None when it is off."""
    form = config.official_form
    if not form.enabled:
        return None
    # A draft's 文号 names the year its approval most likely falls in: that of the day
    # after the period (editions are drafted and approved after their period ends).
    draft_year = (edition.end + dt.timedelta(days=1)).year
    return form.model_dump() | {"draft_number": config.document_number.number(draft_year, "\u3000")}


def issue_marks(form: Mapping[str, Any] | None, approval: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The 文号, the revision, the 落款's date and the 版记's printing date: from the
    approval record (document_number, revision, approved_at), placeholders in a draft."""
    if form is None:
        return None
    if approval is None:
        return {
            "document_number": form["draft_number"],
            "pending": DRAFT_NUMBER,
            "revision": None,
            "signed_on": DRAFT_DATE,
            "printed_on": DRAFT_DATE,
        }
    day = approval_day(approval)
    revision = approval.get("revision")
    return {
        # An approval record made before numbering (an older revision) has no number.
        "document_number": approval.get("document_number") or None,
        "pending": None,
        "revision": f"（第 {revision} 版）" if isinstance(revision, int) and revision >= 2 else None,
        "signed_on": chinese_date(day) if form["date_numerals"] == "chinese" else arabic_date(day),
        "printed_on": arabic_date(day),  # 印发日期: Arabic numerals (GB/T 9704-2012 7.4.3)
    }


# --- the 要点 page ----------------------------------------------------------------------


def _amount(value: float, unit: str | None) -> str:
    """A difference in the indicator's unit: percentage points for a rate."""
    word = "个百分点" if unit == "%" else (unit or "")
    return f"{abs(value):.2f} {word}".rstrip()


def against_target(figure: Mapping[str, Any]) -> dict[str, Any] | None:
    """A key figure against its target: met or not (on the unrounded value, as the
    edition judges it), and the gap in the unit's terms (个百分点 for a rate)."""
    met = figure["meets_target"]  # None without a value or a target
    if met is None:
        return None
    gap = figure["value"] - figure["target"]
    if round(gap, 2) == 0:
        text = "与目标持平"
    else:
        text = f"{'高于' if gap > 0 else '低于'}目标 {_amount(gap, figure.get('unit'))}"
    return {
        "met": met,
        "text": text,
        # how far off, relative to the target, to pick the figure furthest from it
        "shortfall": 0.0 if met else abs(gap) / (abs(figure["target"]) or 1.0),
    }


def _names(rows: Sequence[Mapping[str, Any]]) -> str:
    names = [row["department_name"] for row in rows]
    if len(names) > NAMED:
        return "、".join(names[:NAMED]) + f"等 {len(names)} 个部门"
    return "、".join(names)


def _at_extreme(
    rows: Sequence[Mapping[str, Any]], key: str, highest: bool, shown: ScoreFormat = DEFAULT
) -> list[Mapping[str, Any]]:
    """The rows sharing the highest (or lowest) value of `key`, as shown (`shown`: the version's decimals)."""
    values = [shown.rounded(row[key]) for row in rows]
    best = max(values) if highest else min(values)
    return [row for row, value in zip(rows, values, strict=True) if value == best]


def findings(context: Mapping[str, Any], figures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Three to five sentences from the edition's data: grades, the highest and lowest
    scores, warnings, key figures against target, and the largest moves in rank."""
    ranked = [row for row in context["rankings"] if row["rank"] is not None and row["composite_score"] is not None]
    shown: ScoreFormat = context.get("score_format") or DEFAULT  # scores as the version shows them
    sentences = []
    if ranked:
        n, counts = context["n_ranked"], context["grade_counts"]  # best grade first
        (best, n_best), (second, n_second), (worst, n_worst) = counts[0], counts[1], counts[-1]
        vetoed = len(context["vetoed"])
        sentences.append(
            f"本期参与排名部门 {n} 个，{best}和{second} {n_best + n_second} 个（占 {(n_best + n_second) / n:.1%}），"
            f"{worst} {n_worst} 个（占 {n_worst / n:.1%}" + (f"，其中 {vetoed} 个因一票否决" if vetoed else "") + "）。"
        )
    if len(ranked) >= 2:
        top = _at_extreme(ranked, "composite_score", True, shown)
        bottom = _at_extreme(ranked, "composite_score", False, shown)
        high, low = top[0]["composite_score"], bottom[0]["composite_score"]
        sentences.append(
            f"综合得分最高的是{_names(top)}（{'并列，' if len(top) > 1 else ''}{shown.score(high)} 分），"
            f"最低的是{_names(bottom)}（{'并列，' if len(bottom) > 1 else ''}{shown.score(low)} 分），"
            f"相差 {shown.score(shown.rounded(high) - shown.rounded(low))} 分。"
        )
    red, amber = context["red_count"], context["amber_count"]
    if red or amber:
        level = "red" if red else "amber"
        by_indicator = Counter(w["indicator_name"] for w in context["warnings"] if w["level"] == level)
        leading = sorted(by_indicator.items(), key=lambda item: (-item[1], item[0]))[:2]
        departments = len({w["department_id"] for w in context["warnings"] if w["level"] == level})
        sentences.append(
            f"本期红色预警 {red} 条、黄色预警 {amber} 条；{'红色' if red else '黄色'}预警涉及 {departments} 个部门，"
            f"集中在{'、'.join(f'{name}（{count} 条）' for name, count in leading)}。"
        )
    else:
        sentences.append("本期红色预警、黄色预警均为 0 条。")
    judged = [(f, t) for f in figures if (t := f["against_target"]) is not None]
    if judged:
        met = sum(t["met"] for _, t in judged)
        missed = [(f, t) for f, t in judged if not t["met"]]
        text = f"有目标值的主要指标 {len(judged)} 项，达到目标 {met} 项"
        if missed:
            figure, target = max(missed, key=lambda pair: (pair[1]["shortfall"], pair[0]["name"]))
            text += (
                f"；差距最大的是{figure['name']} {figure['value']:,.2f}{figure['unit'] or ''}，{target['text']}"
                f"（目标 {figure['target']:,.2f}{figure['unit'] or ''}）"
            )
        sentences.append(text + "。")
    up, down = context["improvers"], context["decliners"]
    if up or down:
        parts = []
        if up:
            most = [r for r in up if r["rank_change"] == up[0]["rank_change"]]
            parts.append(f"名次上升最多的是{_names(most)}（上升 {up[0]['rank_change']} 位）")
        if down:
            most = [r for r in down if r["rank_change"] == down[0]["rank_change"]]
            parts.append(f"下降最多的是{_names(most)}（下降 {-down[0]['rank_change']} 位）")
        sentences.append("，".join(parts) + "。")
    return sentences[:5]


def key_points(context: Mapping[str, Any]) -> dict[str, Any]:
    """The 要点 page: grade counts, the top and bottom five, key figures against target, findings."""
    ranked = [row for row in context["rankings"] if row["rank"] is not None]
    figures = [dict(f) | {"against_target": against_target(f)} for f in context["headline"][:KEY_FIGURES]]
    return {
        "grade_counts": context["grade_counts"],
        "n_ranked": context["n_ranked"],
        "top": ranked[:LISTED],
        # the last five, in rank order, never repeating one of the top five
        "bottom": ranked[max(LISTED, len(ranked) - LISTED) :],
        "figures": figures,
        "findings": findings(context, figures),
    }


def edition_context(config: BulletinConfig, context: Mapping[str, Any]) -> dict[str, Any]:
    """What an edition's context gains: the form's settings and the 要点 (None when off)."""
    form = form_settings(config, context["edition"])
    return {"official_form": form, "key_points": key_points(context) if form is not None else None}
