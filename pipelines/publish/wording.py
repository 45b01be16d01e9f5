"""The bulletin's wording: labels for codes, number formats (the templates' filters),
and the key figures' comparisons with target, last period and baseline."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from pipelines.publish.config import Edition
from pipelines.publish.mart_rows import Row
from pipelines.publish.score_format import DEFAULT, ScoreFormat

GRADES = ("优秀", "良好", "合格", "不合格")
DIRECTION_LABELS = {"higher": "正向（越高越好）", "lower": "逆向（越低越好）"}
OUTLIER_LABELS = {
    "none": "不处理",
    "winsorise": "百分位缩尾",
    "skew_kurtosis": "偏度峰度截尾",
}
MISSING_LABELS = {
    "reweight": "权重重分配",
    "group_mean": "同组均值插补",
    "last_observed": "沿用最近值",
}
NORMALISATION_LABELS = {
    "min_max": "极差标准化（最小-最大值）",
    "minmax": "极差标准化（最小-最大值）",
    "z_score": "标准分数法",
    "zscore": "标准分数法",
    "distance_to_target": "目标值距离法",
    "target": "目标值距离法",
    "goalposts": "阈值区间法",
    "percentile_rank": "百分位排名法",
    "percentile": "百分位排名法",
}
SEVERITY_LABELS = {"error": "阻断性", "warning": "提示性"}
# The canonical sources (pipelines/ingest/canonical.py) as a reader knows them.
SOURCE_LABELS = {
    "service_transactions": "好差评办件",
    "survey_responses": "万人评机关问卷",
    "hotline_complaints": "12345 热线工单",
    "leader_reviews": "领导点评",
    "budget_execution": "预算执行",
    "key_projects": "重点项目",
    "indicator_observations": "指标报送值",
    "adjustments": "加减分事项",
}
# The checks of ingest and of the expectation suites (gx:<expectation>:<column>).
CHECK_LABELS = {
    "departments_reported": "按时报送",
    "file_readable": "文件可读",
    "quarantine_within_limit": "隔离比例在上限内",
    "rows_balanced": "行数平衡",
    "volume_within_history": "数据量与历史相符",
}
EXPECTATION_LABELS = {
    "column_values_to_be_between": "取值在范围内",
    "column_values_to_be_in_set": "取值在允许集合内",
    "column_values_to_be_unique": "取值不重复",
    "column_values_to_not_be_null": "不为空",
    "column_pair_values_a_to_be_greater_than_b": "时间先后合理",
    "compound_columns_to_be_unique": "组合不重复",
}
# Icon and word together: the level must not be conveyed by colour alone.
WARNING_LABELS = {"red": "● 红色预警", "amber": "▲ 黄色预警"}
ADJUSTMENT_LABELS = {"bonus": "加分", "penalty": "减分", "veto": "一票否决"}


def score_format(context: Context) -> ScoreFormat:
    """The edition's score format (its context's `score_format`), the default without one."""
    found = context.get("score_format")
    return found if isinstance(found, ScoreFormat) else DEFAULT


@pass_context
def format_score(context: Context, value: float | None) -> str:
    """A score (composite, dimension, indicator score) as the version shows it (score_format.py)."""
    return score_format(context).score(value)


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


@pass_context
def format_signed(context: Context, value: float | None) -> str:
    """A difference of scores or points added (分), signed, at the scores' decimals."""
    return score_format(context).signed(value)


def format_number(value: float | None) -> str:
    """Weights and targets: up to 4 decimals, trailing zeros dropped."""
    if value is None:
        return "—"
    return f"{value:.4f}".rstrip("0").rstrip(".")


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_p_value(value: float) -> str:
    """Two significant digits, small values as a × 10⁻ⁿ (no Latin "e" in the text);
    below what the screens' fixed-point sums hold (10⁻¹⁸), "< 10⁻¹⁸", never a bare 0."""
    if value <= 0:
        return "< 10⁻¹⁸"
    text = f"{value:.2g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = "10" + str(int(exponent)).translate(SUPERSCRIPTS)
    return power if mantissa == "1" else f"{mantissa} × {power}"


def format_value(value: float | None, unit: str | None = None) -> str:
    """An indicator's value in its unit: two decimals, unit appended."""
    if value is None:
        return "—"
    return f"{value:,.2f}{unit or ''}"


def band_outside(row: Mapping[str, Any]) -> str | None:
    """Where the published rank lies outside its band as shown (rounded): "ahead" when
    most alternative weightings and methods rank the department lower, "behind" when
    they rank it higher. The band is what the alternatives give; the published rank is
    one particular method, which can sit at their edge or beyond it."""
    low, high, rank = row.get("rank_p05"), row.get("rank_p95"), row.get("rank")
    if low is None or high is None or rank is None:
        return None
    if rank < int(f"{low:.0f}"):
        return "ahead"
    if rank > int(f"{high:.0f}"):
        return "behind"
    return None


def format_band(row: Mapping[str, Any]) -> Markup | str:
    low, high = row.get("rank_p05"), row.get("rank_p95")
    if low is None or high is None:
        return "—"
    band = f"{low:.0f}–{high:.0f}"
    if band_outside(row) is None:
        return band
    return Markup('{}<sup class="band-outside" title="本期名次在稳健区间之外">＊</sup>').format(band)


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


def _code(text: str) -> Markup:
    """An identifier shown as it is (a column or an unknown code): marked not to be translated."""
    return Markup('<span translate="no">{}</span>').format(text)


def source_label(source: str | None) -> Markup | str:
    if source is None:
        return "—"
    return SOURCE_LABELS[source] if source in SOURCE_LABELS else _code(source)


def check_label(check_name: str | None) -> Markup | str:
    """A check's name in Chinese; an expectation names its column(s) as configured."""
    if check_name is None:
        return "—"
    if check_name in CHECK_LABELS:
        return CHECK_LABELS[check_name]
    kind, _, columns = check_name.removeprefix("gx:").partition(":")
    if check_name.startswith("gx:") and kind in EXPECTATION_LABELS:
        return (
            Markup("{}（{}）").format(EXPECTATION_LABELS[kind], _code(columns)) if columns else EXPECTATION_LABELS[kind]
        )
    return _code(check_name)


def label(labels: Mapping[str, str]) -> Any:
    return lambda code: "—" if code is None else labels.get(code, code)


def meets_target(value: float | None, target: float | None, direction: str | None) -> bool | None:
    """Judged on the unrounded value: 97.96 against 98 is not met, though the change rounds to 0.0%."""
    if value is None or target is None:
        return None
    return value <= target if direction == "lower" else value >= target


# A change is stated in the indicator's own terms (dim_indicator.change_basis): a rate
# in percentage points (61.16% against 90% is 28.84 个百分点 below, not 32.0%), a score
# in points (分), amounts and durations in percent of the earlier value.
CHANGE_UNITS = {"points": " 个百分点", "score": " 分", "relative": "%"}
CHANGE_DIGITS = {"points": 2, "score": 2, "relative": 1}


def change(
    current: float | None,
    reference: float | None,
    direction: str | None,
    basis: str | None = "relative",
    against_target: bool = False,
) -> Row | None:
    """The change from `reference` to `current` in the indicator's terms, with its sense
    (better, worse, flat) for this indicator: `text` for a sentence ("上升 12.97 个百分点",
    "低于目标 28.84 个百分点"), `short` for a table cell ("+12.97 个百分点")."""
    basis = basis or "relative"
    if current is None or reference is None or (basis == "relative" and reference == 0):
        return None
    amount = (current - reference) / abs(reference) * 100 if basis == "relative" else current - reference
    digits = CHANGE_DIGITS[basis]
    if round(amount, digits) == 0:
        return {"amount": 0.0, "text": "与目标持平" if against_target else "持平", "short": "持平", "sense": "flat"}
    magnitude = f"{abs(amount):.{digits}f}{CHANGE_UNITS[basis]}"
    up = amount > 0
    if against_target:
        text = f"{'高于' if up else '低于'}目标 {magnitude}"
    else:
        text = f"{'上升' if up else '下降'} {magnitude}"
    return {
        "amount": amount,
        "text": text,
        "short": f"{'+' if up else '−'}{magnitude}",
        "sense": "better" if up == (direction != "lower") else "worse",
    }


def key_figures(
    figures: Mapping[tuple[str, Any], Row],
    edition: Edition,
    baseline: Edition | None,
    indicators: dict[str, Row],
    wanted: list[str],
) -> list[Row]:
    """Each wanted indicator's city-wide figure against target, last period (环比), the
    same period a year earlier (同比) and the baseline."""
    rows = []
    for indicator_id in wanted:
        meta = indicators.get(indicator_id)
        current = figures.get((indicator_id, edition.period))
        if meta is None or current is None:
            continue
        value = current["value"]
        previous = figures.get((indicator_id, edition.previous.period))
        base = figures.get((indicator_id, baseline.period)) if baseline else None
        year_ago = figures.get((indicator_id, edition.year_ago.period))
        basis = meta["change_basis"]
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
                "vs_target": change(value, meta["target"], meta["direction"], basis, against_target=True),
                "meets_target": meets_target(value, meta["target"], meta["direction"]),
                "previous": previous["value"] if previous else None,
                "vs_previous": change(value, previous["value"] if previous else None, meta["direction"], basis),
                "year_ago": year_ago["value"] if year_ago else None,
                "vs_year_ago": change(value, year_ago["value"] if year_ago else None, meta["direction"], basis),
                "baseline": base["value"] if base else None,
                "vs_baseline": change(value, base["value"] if base else None, meta["direction"], basis),
            }
        )
    return rows
