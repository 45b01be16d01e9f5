"""Charts for the bulletins: Altair (Vega-Lite) specs rendered to inline SVG by vl-convert.

The SVG goes into the page as markup, so an edition stays one file that opens
offline. Text stays text (the browser draws it with the page's CJK font), and the
same rows give the same bytes.

Cost: vl-convert lays out CJK text slowly (~0.2 s for a chart with a Chinese
legend, ~0.05 s without). The trend chart, drawn once per department, therefore
carries no Chinese text: its series are told apart by colour and point shape, and
the page's scorecard table is its legend. SVGs are also cached by the hash of their
spec, so a rerun, or a month drafted again with unchanged marts, renders nothing.

A chart is handed around as its Vega-Lite spec (a plain dict: cheap to send to the
drawing processes). Charts of one shape differ only in their rows: Altair builds
the trend chart's spec once per shape, and vl-convert compiles each shape to Vega
once per process, the rows then put in its one inline dataset (a cold sample run
draws about 1,300 charts: per chart 22 ms -> 12 ms; tests check the SVG is the
same bytes as a whole compile's). The trend chart's axes, the same for every chart
of its shape, are drawn once per shape and process (see "axes drawn once" below:
19 -> 5 ms per trend chart, an edition's drawing 1.85 -> 1.0 s).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import altair as alt
from altair.utils.schemapi import debug_mode
from markupsafe import Markup

from pipelines.parquet import temporary_beside

FONT = "Noto Sans CJK SC"
GRID = "#d9d9d9"
INK = "#1f1f1f"
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
SERIES_COLOURS = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
# Shapes as well as colours, so series read in black-and-white print; the scorecard
# shows the same symbol (SERIES_MARKS) beside each series.
SERIES_SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "circle", "square"]
SERIES_MARKS = ["●", "■", "▲", "◆", "✚", "▼", "○", "□"]


def _spec(build: Callable[..., alt.TopLevelMixin]) -> Callable[..., dict[str, Any]]:
    """Build the chart and return its Vega-Lite spec. Altair validates every object
    against the Vega-Lite schema as it is built, which costs as much as drawing; our
    specs are fixed in code and tested, so skip it."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
        with debug_mode(False):
            return build(*args, **kwargs).to_dict(validate=False)

    return wrapper


def _configured(chart: alt.TopLevelMixin, font: str | None = FONT, label_size: int = 11) -> alt.TopLevelMixin:
    configured = chart.configure(font=font, background="white") if font else chart.configure(background="white")
    # labelLimit 0: labels are never cut short. Cutting one to a width measures its text
    # again and again, which was half of the drawing time (a 68-department rank-band
    # chart 515 → 272 ms, a trend chart 31 → 16 ms), and a 通报 names each unit in full.
    return configured.configure_view(stroke=None).configure_axis(
        gridColor=GRID, labelColor=INK, titleColor=INK, labelFontSize=label_size, titleFontSize=label_size, labelLimit=0
    )


@_spec
def rank_bands(rows: Sequence[dict[str, Any]], n_ranked: int) -> alt.TopLevelMixin:
    """Rank (point) and its 5th-95th percentile band (rule) per department, in rank
    order. Departments whose bands do not overlap really differ."""
    data = [
        {
            "label": row["department_name"],
            "position": position,
            "rank": row["rank"],
            "low": row["rank_p05"],
            "high": row["rank_p95"],
        }
        for position, row in enumerate(rows)
    ]
    # Half a rank of room at each end, so the first and last points are not cut.
    x_scale = alt.Scale(domain=[0.5, max(n_ranked, 2) + 0.5], nice=False, zero=False)
    # The rows' order by a field, not by a list of labels: Vega compiles a list into
    # one expression per label, which overflows its stack at a province's thousands.
    in_order = alt.EncodingSortField(field="position", op="min")
    base = alt.Chart(alt.Data(values=data)).encode(y=alt.Y("label:N", sort=in_order, title=None))
    band = base.mark_rule(strokeWidth=3, color="#7f9fbf").encode(
        x=alt.X("low:Q", scale=x_scale, title="名次（点为本期名次，线为第 5–95 百分位区间，越靠左越好）"),
        x2="high:Q",
    )
    point = base.mark_point(filled=True, size=36, color=INK, opacity=1).encode(x=alt.X("rank:Q", scale=x_scale))
    # About the page's width with the department names beside it (the page scales it to fit).
    return _configured((band + point).properties(width=760, height=max(60, 16 * len(data))), label_size=12)


def series_key(index: int) -> dict[str, str]:
    """Colour and symbol of the index-th series, for the legend the page draws beside the chart."""
    return {"colour": SERIES_COLOURS[index % len(SERIES_COLOURS)], "mark": SERIES_MARKS[index % len(SERIES_MARKS)]}


def trend(
    rows: Sequence[dict[str, Any]],
    series_order: Sequence[str],
    months: Sequence[str],
    domain: Sequence[float] = (0, 100),
) -> dict[str, Any]:
    """One line per series (composite and each dimension) over the given months, the
    score axis over `domain` (the version's scale). No Chinese text (see the module's
    note): the axis title is in the page's caption."""
    data = [{"month": r["month"], "series": r["series"], "score": r["score"]} for r in rows]
    shape = _trend_shape(tuple(series_order), tuple(months), tuple(domain))
    return shape | {"data": {"values": data}}


@functools.lru_cache(maxsize=64)
def _trend_shape(
    series_order: tuple[str, ...], months: tuple[str, ...], domain: tuple[float, ...] = (0, 100)
) -> dict[str, Any]:
    """The trend chart's spec without its rows: the same for every department of an edition."""
    n = len(series_order)
    with debug_mode(False):
        chart = (
            alt.Chart(alt.Data(values=[]))
            .mark_line(point=alt.OverlayMarkDef(filled=True, size=40), strokeWidth=2)
            .encode(
                x=alt.X(
                    "month:O",
                    sort=list(months),
                    scale=alt.Scale(domain=list(months)),
                    title=None,
                    axis=alt.Axis(labelAngle=0, labelExpr="slice(datum.value, 2)"),
                ),
                y=alt.Y("score:Q", scale=alt.Scale(domain=list(domain)), title=None),
                color=alt.Color(
                    "series:N",
                    sort=list(series_order),
                    legend=None,
                    scale=alt.Scale(domain=list(series_order), range=[series_key(i)["colour"] for i in range(n)]),
                ),
                shape=alt.Shape(
                    "series:N",
                    sort=list(series_order),
                    legend=None,
                    scale=alt.Scale(domain=list(series_order), range=SERIES_SHAPES[:n] or ["circle"]),
                ),
            )
        )
        spec = _configured(chart.properties(width=860, height=240), font=None).to_dict(validate=False)
        return spec | {"usermeta": {AXES_FIXED: True}}


@_spec
def keyword_bars(rows: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Complaint themes: texts mentioning each keyword, most mentioned first."""
    data = [{"keyword": r["keyword"], "mentions": r["mentions"]} for r in rows]
    order = [d["keyword"] for d in data]
    chart = (
        alt.Chart(alt.Data(values=data))
        .mark_bar(color="#0072B2")
        .encode(
            y=alt.Y("keyword:N", sort=order, title=None),
            x=alt.X("mentions:Q", title="提及条数", axis=alt.Axis(tickMinStep=1)),
        )
    )
    return _configured(chart.properties(width=820, height=max(80, 28 * len(data))), label_size=14)


@functools.cache
def _renderer_version() -> str:
    from importlib.metadata import version

    return version("vl-convert-python")


def to_svg(spec: dict[str, Any], cache_dir: Path | None = None) -> Markup:
    """The chart (a Vega-Lite spec) as an inline <svg> element (vl-convert), from the
    cache when rendered before."""
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False)
    # Another vl-convert may draw the same spec otherwise: its version is part of the key.
    key = hashlib.sha256(f"{_renderer_version()}\n{text}".encode()).hexdigest()
    cached = cache_dir / f"{key}.svg" if cache_dir else None
    if cached and cached.exists():
        svg = cached.read_text(encoding="utf-8")
    else:
        svg = _draw(spec)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_beside(cached)
            tmp.write_text(svg, encoding="utf-8")
            os.replace(tmp, cached)
    if not svg.startswith("<svg") or "<script" in svg.lower() or "<foreignobject" in svg.lower():
        raise ValueError("vl-convert returned something other than a plain SVG")
    return Markup(svg)  # vl-convert escapes the text it draws; checked by the bulletin tests


def _draw(spec: dict[str, Any]) -> str:
    """Draw a spec: its shape compiled to Vega once per process, its rows put into the
    compiled spec's one inline dataset. A spec whose rows are not inline is compiled whole."""
    import vl_convert  # ~0.5 s to load its engine: only when a chart is drawn

    values = spec.get("data", {}).get("values")
    if not isinstance(values, list):
        return vl_convert.vegalite_to_svg(spec)
    shape = json.dumps(spec | {"data": spec["data"] | {"values": []}}, sort_keys=True, ensure_ascii=False)
    vega = _vega_of(shape)
    if vega is None:
        return vl_convert.vegalite_to_svg(spec)
    slot = vega_slot(vega)  # the cached compile is shared: a new spec is made around it, never changed
    with_rows = vega | {"data": [entry | {"values": values} if entry is slot else entry for entry in vega["data"]]}
    if spec.get("usermeta", {}).get(AXES_FIXED):
        framed = _framed(shape, with_rows)
        if framed is not None:
            return framed
    return vl_convert.vega_to_svg(with_rows)


@functools.lru_cache(maxsize=256)
def _vega_of(shape: str) -> dict[str, Any] | None:
    """The Vega spec of a Vega-Lite spec with no rows, or None unless it has exactly one
    empty inline dataset for the rows to go into."""
    import vl_convert

    vega = vl_convert.vegalite_to_vega(json.loads(shape))
    return vega if vega_slot(vega) is not None else None


def vega_slot(vega: dict[str, Any]) -> dict[str, Any] | None:
    """The one inline dataset of a compiled shape (values []), or None if not exactly one."""
    slots = [entry for entry in vega.get("data", []) if entry.get("values") == []]
    return slots[0] if len(slots) == 1 else None


# --- axes drawn once per shape -------------------------------------------------------
# vl-convert measures every text item it lays out (~0.5 ms for a short Latin label,
# ~3 ms for a Chinese one): the 21 axis labels were three quarters of a trend chart's
# 19 ms. A shape whose scales all have fixed domains (marked AXES_FIXED in its
# usermeta) has the same axes whatever its rows, so they are drawn once per shape and
# process (the "frame"), and each chart's rows are drawn without axes and put into the
# frame. Vega sizes the view to the bounds of everything drawn, so this is only done
# when the rows' marks lie within the frame's bounds (else the chart is drawn whole):
# the SVG is then the same bytes as a whole drawing (tests/test_charts.py checks).

AXES_FIXED = "govperf_axes_fixed"  # usermeta flag: no scale's domain depends on the rows
ROOT_GROUP = '<g class="mark-group role-frame root"'
MARK_GROUP = '<g class="mark-'
# Vega rounds the view's size and origin; a mark this close to the frame's edge is
# drawn whole rather than trusted to round the same way.
EDGE_MARGIN_PX = 1.0


@functools.lru_cache(maxsize=64)
def _frame_of(shape: str) -> tuple[str, tuple[float, ...], tuple[float, ...]] | None:
    """The shape drawn with its axes and no rows, cut before its (empty) marks; the
    frame's bounds; and the bounds of the bare plot (no axes, no rows). None when the
    two drawings do not share their marks and tail as expected."""
    import vl_convert

    vega = _vega_of(shape)
    frame = vl_convert.vega_to_svg(vega)
    bare = vl_convert.vega_to_svg(vega | {"axes": []})
    start = _marks_start(bare)
    if start is None or not frame.endswith(bare[start:]):
        return None
    return frame[: len(frame) - len(bare) + start], _bounds(frame), _bounds(bare)


def _framed(shape: str, with_rows: dict[str, Any]) -> str | None:
    import vl_convert

    frame = _frame_of(shape)
    if frame is None:
        return None
    head, frame_bounds, plot_bounds = frame
    marks = vl_convert.vega_to_svg(with_rows | {"axes": []})
    start = _marks_start(marks)
    if start is None or not _inside(_bounds(marks), plot_bounds, frame_bounds):
        return None
    return head + marks[start:]


def _marks_start(svg: str) -> int | None:
    """Where the root group's first mark begins (after its background path)."""
    root = svg.find(ROOT_GROUP)
    start = svg.find(MARK_GROUP, root + len(ROOT_GROUP)) if root >= 0 else -1
    return start if start >= 0 else None


def _bounds(svg: str) -> tuple[float, ...]:
    """What was drawn, in the root group's coordinates: left, top, right, bottom (the
    view's padding included on every side, which cancels in comparisons)."""
    size = re.match(r'<svg [^>]*width="([\d.]+)" height="([\d.]+)"', svg)
    origin = re.search(r'transform="translate\(([-\d.e]+),([-\d.e]+)\)"', svg)
    if size is None or origin is None:
        return (math.inf, math.inf, -math.inf, -math.inf)  # never inside anything
    width, height = float(size[1]), float(size[2])
    x, y = float(origin[1]), float(origin[2])
    return (-x, -y, width - x, height - y)


def _inside(marks: tuple[float, ...], plot: tuple[float, ...], frame: tuple[float, ...]) -> bool:
    """Each edge of the marks' drawing is the bare plot's (nothing drawn past the plot on
    that side, and the frame holds the plot) or lies well inside the frame's."""
    (left, top, right, bottom), (p_left, p_top, p_right, p_bottom), (f_left, f_top, f_right, f_bottom) = (
        marks,
        plot,
        frame,
    )
    margin = EDGE_MARGIN_PX
    return (
        (left == p_left or left >= f_left + margin)
        and (top == p_top or top >= f_top + margin)
        and (right == p_right or right <= f_right - margin)
        and (bottom == p_bottom or bottom <= f_bottom - margin)
    )
