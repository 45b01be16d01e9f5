"""Rating gaming planted in the sample city, for the rating-gaming screens
(marts.fct_anomalies, docs/methodology.md §13e) to find.

Each pattern is planted in GAMED_PER_SCREEN named departments (GenerationSummary.gaming),
chosen from the seed; every other department is clean. The effects are set near the
screens' detection limits: the planted test (tests/test_rating_screens_planted.py)
shows they are found, not that they shout. The rating times themselves, gamed or not,
are the generator's (_rating_times), which reads the timing patterns' settings here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GAMING_SCREENS = ("rating_mismatch", "rating_uniformity", "rating_fast", "rating_burst", "copied_comment")
GAMED_PER_SCREEN = 2
MISMATCHES = 16  # good ratings a month whose comment is a complaint (asked for 非常满意), about
UNIFORM_PUSH = 1.0  # share of its other ratings turned into 非常满意: all ("100% 非常满意")
FAST_SHARE = 0.1  # share of its counter ratings entered 1-8 s after completion,
FAST_RATINGS = 10  # and at least about this many a month
BURST_RATINGS = 6  # counter ratings of the month re-entered in one 5-minute burst, about
COPIES = 6  # good ratings a month given the same pasted praise, about
# The pasted praise names the office, as such texts do: each gamed department's own.
PASTED_PRAISE = (
    "感谢{name}窗口工作人员热情周到的服务，办事效率非常高，为你们点赞！",
    "非常满意，{name}工作人员耐心细致，一次就办好了，给政府服务点赞！",
    "{name}服务态度特别好，流程清楚，材料一次讲清，真正做到了便民利民。",
)


def choose_gaming(
    rng: np.random.Generator, peer_groups: Sequence[str], volume: np.ndarray, eligible: list[int]
) -> dict[str, list[int]]:
    """Screen -> the departments (indices) gaming that way. The busiest, from the busiest
    30% by volume, at most 4 of a peer group: a department with a handful of ratings a
    month cannot be screened, gamed or not, and every group keeps clean peers to compare
    with (a group of gamed departments would hide them from each other)."""
    wanted = GAMED_PER_SCREEN * len(GAMING_SCREENS)
    busier = np.quantile(volume, 0.7)
    busiest: list[int] = []
    taken: dict[str, int] = {}
    for i in sorted(eligible, key=lambda i: -volume[i]):
        group = peer_groups[i]
        if volume[i] >= busier and taken.get(group, 0) < 4:
            busiest.append(i)
            taken[group] = taken.get(group, 0) + 1
    busiest = busiest[:wanted]  # by volume, the busiest first
    # "100% 非常满意" is already the pattern at its strongest: only volume makes it
    # detectable, so it goes to the two busiest; the other patterns at random
    rest = [busiest[GAMED_PER_SCREEN + k] for k in rng.permutation(len(busiest) - GAMED_PER_SCREEN)]
    gaming = {"rating_uniformity": busiest[:GAMED_PER_SCREEN]}
    for k, screen in enumerate(s for s in GAMING_SCREENS if s != "rating_uniformity"):
        gaming[screen] = rest[k * GAMED_PER_SCREEN : (k + 1) * GAMED_PER_SCREEN]
    return {screen: gaming[screen] for screen in GAMING_SCREENS}


def pasted_praise(short_names: Sequence[str]) -> np.ndarray:
    """Each department's pasted praise, naming it."""
    return np.array(
        [PASTED_PRAISE[i % len(PASTED_PRAISE)].format(name=name) for i, name in enumerate(short_names)], dtype=object
    )


def game_ratings(
    gamed: np.ndarray,
    volume: np.ndarray,
    level: np.ndarray,
    comment: np.ndarray,
    has_comment: np.ndarray,
    pasted: np.ndarray,
    complaints: Sequence[str],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rating and comment patterns of the gamed departments, one row per case.
    `gamed`: each row's department's pattern ('' when clean); `volume`: its cases in the
    month, for the patterns planted as a count a month rather than a share; `level`:
    the rating level, 0 (非常不满意) .. 4 (非常满意), 5 for none."""
    u = rng.random(level.size)
    # staff ask an unhappy citizen for 非常满意; the complaint stays in the comment
    flip = (gamed == "rating_mismatch") & (level >= 3) & (level <= 4) & (u < MISMATCHES / (0.5 * volume))
    comment = np.where(
        flip, np.array(complaints, dtype=object)[rng.integers(len(complaints), size=level.size)], comment
    )
    has_comment = has_comment | flip
    # every other rating pushed up to 非常满意
    push = (gamed == "rating_uniformity") & (level <= 3) & (u < UNIFORM_PUSH)
    level = np.where(push, 4, level)
    # the same praise pasted under good ratings, one text per department: about COPIES a
    # month, a good rating being about half the department's cases
    copy = (gamed == "copied_comment") & (level >= 3) & (level <= 4) & (u < COPIES / (0.5 * volume))
    comment = np.where(copy, pasted, comment)
    return level, comment, has_comment | copy
