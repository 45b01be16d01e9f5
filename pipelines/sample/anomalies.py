"""Anomalies planted in the sample city's indicator series, for the anomaly flags
(marts.fct_indicator_anomalies, docs/methodology.md §13f) to find.

The plants change the generated source rows, never an indicator value: in a spike
month the department's cases take SPIKE_SLOWDOWN times as long to handle (its on-time
rate collapses, its handling times jump); from a level shift's first month on, its
cases take SHIFT_SLOWDOWN times as long (its on-time rate steps down and stays down,
handling times go up), or a
push online moves ONLINE_PUSH of its cases to 网办 (its online rate steps up: a
better-direction anomaly). The departments are chosen from the seed (a stream of
their own) among the stable, clean ones: active over the whole range, not gamed
(pipelines/sample/gaming.py), not merging, no gaps, and among the busiest, so that a
month's rate is not mostly noise. They are recorded in GenerationSummary.anomalies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPIKE_SLOWDOWN = 6.0  # a spike month: cases take 6 times as long (on-time rate collapses)
SHIFT_SLOWDOWN = 1.8  # a slowdown from a month on: handling times up 80%, for good
ONLINE_PUSH = 0.3  # a push online from a month on: 30 more of every 100 cases online
FIRST_PLANTED_MONTH = 6  # the 7th month at the earliest: the own history needs 6 periods
# kind -> (what changes, the indicator it shows in first, its direction there)
PLANTS = {
    "spike": ("slowdown", "on_time_rate", "worse"),
    "level_shift": ("slowdown", "on_time_rate", "worse"),
    "online_shift": ("online", "online_rate", "better"),
}


@dataclass(frozen=True)
class PlantedAnomaly:
    kind: str  # spike | level_shift | online_shift
    department: int  # index
    first_month: int  # month index; a spike is that month only, a shift lasts to the end
    last_month: int


def choose_anomalies(
    rng: np.random.Generator, n_months: int, volume: np.ndarray, eligible: Sequence[int]
) -> list[PlantedAnomaly]:
    """One department per kind, from the busiest eligible ones (the five busiest, for
    three kinds), and the month it starts (the 7th month or later when the range allows)."""
    if not eligible:
        return []
    # the busiest few: a month's rate of a department with 20 cases is mostly noise
    busy = sorted(eligible, key=lambda i: -volume[i])[: len(PLANTS) + 2]
    chosen = [busy[k] for k in rng.permutation(len(busy))[: len(PLANTS)]]
    first = min(FIRST_PLANTED_MONTH, n_months - 1)
    planted = []
    for kind, department in zip(PLANTS, chosen):
        start = int(rng.integers(first, max(first + 1, n_months - 1)))
        end = start if kind == "spike" else n_months - 1
        planted.append(PlantedAnomaly(kind, department, start, end))
    return planted


def plant_arrays(planted: Sequence[PlantedAnomaly], n_departments: int, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """(slowdown, online push) per department and month: the factor on the working time
    a case needs, and the share added to each case's chance of being handled online."""
    slowdown = np.ones((n_departments, n_months))
    online = np.zeros((n_departments, n_months))
    for plant in planted:
        months = slice(plant.first_month, plant.last_month + 1)
        if plant.kind == "spike":
            slowdown[plant.department, months] = SPIKE_SLOWDOWN
        elif plant.kind == "level_shift":
            slowdown[plant.department, months] = SHIFT_SLOWDOWN
        else:
            online[plant.department, months] = ONLINE_PUSH
    return slowdown, online


def summary(planted: Sequence[PlantedAnomaly], ids: Sequence[str], months: Sequence[str]) -> list[dict]:
    """What GenerationSummary.anomalies records: kind, department id, first and last
    month (YYYY-MM), the indicator it shows in first and the direction there."""
    return [
        {
            "kind": p.kind,
            "department_id": ids[p.department],
            "first_month": months[p.first_month],
            "last_month": months[p.last_month],
            "indicator_id": PLANTS[p.kind][1],
            "direction": PLANTS[p.kind][2],
        }
        for p in planted
    ]
