"""Grades (等次), their quotas, and the annual appraisal (年度绩效考核) settings of a
catalogue version, validated at load like the rest of catalogue.yaml.

A version's `grades` grade months and quarters; its `annual` block may give the year
its own grades, quota tie rule and bonus/penalty caps (docs/methodology.md §9b).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# How a quota treats departments tied (on the rank score) at its boundary:
#   department_id  the tie is broken by department id, so the quota is never exceeded
#   all_keep       all tied departments keep the grade: the quota may be exceeded
#   all_drop       all tied departments drop a grade: the quota may be left unfilled
QuotaTies = Literal["department_id", "all_keep", "all_drop"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grade(_Strict):
    grade: str
    min_score: float  # within the version's scale (checked by CatalogueVersion)
    max_share: float | None = Field(default=None, gt=0, le=1)


class AdjustmentCaps(_Strict):
    bonus: float = Field(ge=0)
    penalty: float = Field(ge=0)


def grade_problem(grades: list[Grade], lowest: float = 0.0) -> str | None:
    """Why a list of grades cannot grade, or None (`lowest`: the scale's lowest score)."""
    scores = [g.min_score for g in grades]
    if scores != sorted(scores, reverse=True) or scores[-1] != lowest:
        return f"grades must be listed from best to worst and the last must start at {lowest:g}"
    if grades[-1].max_share is not None:
        return "the lowest grade cannot have a quota (max_share): there is no grade below it"
    return None


class BuiltUp(_Strict):
    """The year built up from the base scores (before bonus and penalty) of its
    quarters or months, weighted; `weights` one per quarter (4) or month (12), equal
    when unset."""

    periods: Literal["quarter", "month"] = "quarter"
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _one_weight_per_period(self) -> BuiltUp:
        wanted = 4 if self.periods == "quarter" else 12
        if self.weights is not None:
            if len(self.weights) != wanted:
                raise ValueError(
                    f"weights: {wanted} needed, one per {self.periods} of the year, got {len(self.weights)}"
                )
            if any(w <= 0 for w in self.weights):
                raise ValueError("weights must all be above 0")
        return self

    def weight_rows(self) -> list[tuple[int, float]]:
        """(position in the year, weight): 1..4 for quarters, 1..12 for months."""
        count = 4 if self.periods == "quarter" else 12
        return [(i + 1, w) for i, w in enumerate(self.weights or [1.0] * count)]


class Annual(_Strict):
    """The year as a period. `pooled`: the year's data scored as one period, as a
    quarter's are. `built_up`: the weighted base scores of its quarters (or months),
    with the annual-only indicators (`annual_only: true` in the tree) scored on the
    year's data for their share. Unset fields follow the version's own."""

    method: Literal["pooled", "built_up"] = "pooled"
    built_up: BuiltUp | None = None
    grades: list[Grade] | None = Field(default=None, min_length=1)
    quota_ties: QuotaTies | None = None
    adjustment_caps: AdjustmentCaps | None = None
    # A department in office for part of the year (merged, split, new) is scored on its
    # months in office and ranked with the others (`months_in_office`); or, when it merged
    # into another during the year, its year's rows count with that successor's and it has
    # no year score of its own (`successor`). The edition says which.
    merged_departments: Literal["months_in_office", "successor"] = "months_in_office"

    @model_validator(mode="after")
    def _built_up_settings_only_when_built_up(self) -> Annual:
        if self.built_up is not None and self.method != "built_up":
            raise ValueError("built_up is set but method is not built_up")
        return self

    @property
    def build(self) -> BuiltUp:
        return self.built_up or BuiltUp()


def grade_rows(common: dict, grades: list[Grade], annual: Annual) -> list[dict]:
    """The catalogue_grades rows of a version: its grades for months and quarters
    (applies_to 'period'), and the year's (applies_to 'year')."""
    rows = []
    for applies_to, listed in (("period", grades), ("year", annual.grades or grades)):
        for order, grade in enumerate(listed):
            rows.append(
                common
                | {
                    "applies_to": applies_to,
                    "grade_order": order,
                    "grade": grade.grade,
                    "min_score": grade.min_score,
                    "max_share": grade.max_share,
                }
            )
    return rows


def version_columns(caps: AdjustmentCaps, quota_ties: QuotaTies, annual: Annual) -> dict:
    """The catalogue_versions columns for caps and quotas, the year's beside the period's."""
    annual_caps = annual.adjustment_caps or caps
    return {
        "bonus_cap": caps.bonus,
        "penalty_cap": caps.penalty,
        "quota_ties": quota_ties,
        "annual_bonus_cap": annual_caps.bonus,
        "annual_penalty_cap": annual_caps.penalty,
        "annual_quota_ties": annual.quota_ties or quota_ties,
        "annual_method": annual.method,
        "annual_periods": annual.build.periods if annual.method == "built_up" else None,
        "merged_departments": annual.merged_departments,
    }


def annual_weight_rows(common: dict, annual: Annual) -> list[dict]:
    """The catalogue_annual_weights rows of a built-up version (none for pooled)."""
    if annual.method != "built_up":
        return []
    build = annual.build
    return [
        common | {"period_type": build.periods, "position": position, "weight": weight}
        for position, weight in build.weight_rows()
    ]
