"""Charts: a spec drawn from its shape's cached Vega compile is the same SVG as a whole compile."""

from __future__ import annotations

import json
import random

import vl_convert

from pipelines.publish import charts

MONTHS = ["2025-01", "2025-02", "2025-03"]
SERIES = ["综合得分", "办事人评价", "政务服务效能"]


def _trend_rows(offset: float) -> list[dict]:
    return [
        {"month": month, "series": series, "score": 50 + offset + 7 * i - 3 * j}
        for i, month in enumerate(MONTHS)
        for j, series in enumerate(SERIES)
    ]


def test_a_shape_compiled_once_draws_each_charts_own_rows() -> None:
    first = charts.trend(_trend_rows(0), SERIES, MONTHS)
    second = charts.trend(_trend_rows(20), SERIES, MONTHS[:2] + MONTHS[2:])  # same shape, other rows
    bands = charts.rank_bands(
        [{"department_name": "市发展和改革委员会", "rank": 1, "rank_p05": 1, "rank_p95": 3}], n_ranked=4
    )
    bars = charts.keyword_bars([{"keyword": "态度", "mentions": 4}, {"keyword": "排队", "mentions": 2}])
    drawn = [charts._draw(spec) for spec in (first, second, bands, bars)]
    assert drawn == [vl_convert.vegalite_to_svg(spec) for spec in (first, second, bands, bars)]
    assert drawn[0] != drawn[1]  # the rows of the second chart, not the first's
    assert charts._vega_of.cache_info().hits >= 1


def test_trend_spec_carries_its_rows_and_shares_the_rest() -> None:
    first, second = charts.trend(_trend_rows(0), SERIES, MONTHS), charts.trend(_trend_rows(5), SERIES, MONTHS)
    assert first["data"]["values"] != second["data"]["values"]
    assert {k: v for k, v in first.items() if k != "data"} == {k: v for k, v in second.items() if k != "data"}
    assert len(first["data"]["values"]) == len(MONTHS) * len(SERIES)


def test_a_spec_with_no_single_inline_dataset_is_compiled_whole() -> None:
    layered = {
        "layer": [
            {
                "data": {"values": [{"a": 1}]},
                "mark": "point",
                "encoding": {"x": {"field": "a", "type": "quantitative"}},
            },
            {"data": {"values": []}, "mark": "rule", "encoding": {"x": {"field": "a", "type": "quantitative"}}},
        ]
    }
    assert charts._draw(layered) == vl_convert.vegalite_to_svg(layered)


def test_a_rank_band_chart_of_a_provinces_thousands_of_units_draws_in_rank_order() -> None:
    """The rows' order once reached Vega as a list of every label, compiled into nested
    expressions that overflowed its stack at 5,000 units ("Maximum call stack size
    exceeded"); the order is now a field."""
    rows = [
        {"department_name": f"单位{n:04d}", "rank": n + 1, "rank_p05": max(1, n - 3), "rank_p95": n + 5}
        for n in range(5_000)
    ]
    svg = str(charts.to_svg(charts.rank_bands(rows, 5_000)))
    first, second, last = (svg.index(f">单位{n:04d}<") for n in (0, 1, 4_999))
    assert first < second < last  # the axis labels, top to bottom, in rank order


def _random_trend(rng: random.Random, extremes: bool) -> dict:
    """A trend chart over a random stretch of 15 months; with `extremes`, scores on and
    past the axis' ends and missing ones too."""
    months = [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01", "2026-02", "2026-03"]
    months = months[: rng.randint(1, len(months))]
    rows = []
    for month in months:
        for series in SERIES:
            if rng.random() < 0.1:
                continue  # a series with no score that month
            special = extremes and rng.random() < 0.3
            score = rng.choice([0, 100, 0.2, 99.8, -6, 130, None]) if special else rng.uniform(0, 100)
            rows.append({"month": month, "series": series, "score": score})
    return charts.trend(rows, SERIES, months)


def test_a_trend_chart_drawn_into_its_shapes_frame_is_the_same_svg_as_a_whole_drawing() -> None:
    """The trend chart's axes are drawn once per shape and each chart's rows put into that
    frame; the bytes must equal vl-convert's drawing of the whole spec, also for scores on
    and past the axis' ends (a point at 100 reaches past the plot, one at 130 past the
    frame: then the chart is drawn whole)."""
    rng = random.Random(13)
    framed_before = _framed_calls()
    for _ in range(60):
        spec = _random_trend(rng, extremes=True)
        assert charts._draw(spec) == vl_convert.vegalite_to_svg(spec)
    ordinary = _random_trend(random.Random(1), extremes=False)
    shape = json.dumps(ordinary | {"data": ordinary["data"] | {"values": []}}, sort_keys=True, ensure_ascii=False)
    vega = charts._vega_of(shape)
    slot = charts.vega_slot(vega)

    def with_rows(rows: list[dict]) -> dict:
        return vega | {"data": [entry | {"values": rows} if entry is slot else entry for entry in vega["data"]]}

    assert charts._framed(shape, with_rows(ordinary["data"]["values"])) is not None  # framed, not drawn whole
    past = [row | {"score": 130} for row in ordinary["data"]["values"]]
    assert charts._framed(shape, with_rows(past)) is None  # points above the frame: drawn whole
    assert _framed_calls() > framed_before


def _framed_calls() -> int:
    return charts._frame_of.cache_info().hits + charts._frame_of.cache_info().misses
