"""Performance bulletins (绩效通报): marts → static HTML editions, one per month or quarter.

An edition is one self-contained HTML file (CSS and SVG charts inline; it opens
offline from disk), with a page per department in a folder beside it:

    <out_dir>/bulletin_2026-03.html
    <out_dir>/bulletin_2026-03_departments/<department_id>.html

A draft's out_dir is a fresh version folder that edition_folder swaps in whole, with
the edition's XLSX export beside the HTML.

The parts, one room each: edition_rows reads the marts (only schema ``marts``),
edition_context gathers what an edition shows, wording holds the labels and number
formats, and this module draws the charts and writes the pages. The same marts give
the same bytes: nothing comes from the clock, every query has a full ORDER BY, and
dates shown come from the approval record or from configuration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipelines.parquet import temporary_beside
from pipelines.publish import charts, official_form, wording
from pipelines.publish.config import BulletinConfig, Edition
from pipelines.publish.edition_context import collect_edition
from pipelines.publish.edition_rows import catalogue_version_of, is_ranked, names_in_force

# Re-exported: the bulletin's entry points for its callers (drafts, approval, exports).
__all__ = [
    "catalogue_version_of",
    "collect_edition",
    "drawing",
    "is_ranked",
    "names_in_force",
    "render_edition",
    "render_monthly_bulletin",
    "write_edition",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "reports" / "templates"
STYLESHEET = REPO_ROOT / "reports" / "static" / "bulletin.css"
OFFICIAL_FORM_STYLESHEET = REPO_ROOT / "reports" / "static" / "official_form.css"  # with bulletin.yaml official_form
EDITION_TEMPLATE = "edition.html.j2"
DEPARTMENT_TEMPLATE = "department.html.j2"
ANNEX_TEMPLATE = "annex.html.j2"
ANNEX_PAGE = "internal/疑点核查.html"


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Templates end in .j2, so j2 must be listed; default=True covers the rest.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.filters.update(
        score=wording.format_score,
        percent=wording.format_percent,
        rank_change=wording.format_rank_change,
        signed=wording.format_signed,
        number=wording.format_number,
        value=wording.format_value,
        band=wording.format_band,
        band_outside=wording.band_outside,
        css_string=wording.css_string,
        page_name=wording.page_name,
        p_value=wording.format_p_value,
        source_label=wording.source_label,
        check_label=wording.check_label,
        direction_label=wording.label(wording.DIRECTION_LABELS),
        normalisation_label=wording.label(wording.NORMALISATION_LABELS),
        outlier_label=wording.label(wording.OUTLIER_LABELS),
        missing_label=wording.label(wording.MISSING_LABELS),
        severity_label=wording.label(wording.SEVERITY_LABELS),
        warning_label=wording.label(wording.WARNING_LABELS),
        adjustment_label=wording.label(wording.ADJUSTMENT_LABELS),
    )
    return env


ENVIRONMENT = _build_environment()


def _stylesheet(official: bool = False) -> Markup:
    """bulletin.css, and official_form.css after it for an edition in the official form."""
    css = ""
    for path in (STYLESHEET, OFFICIAL_FORM_STYLESHEET) if official else (STYLESHEET,):
        text = path.read_text(encoding="utf-8")
        if "</" in text:  # would end the <style> element early
            raise ValueError(f"{path} must not contain '</'")
        css += text
    return Markup(css)  # our own files; HTML-escaping would break quoted font names


def _chart_cache() -> Path:
    from pipelines.settings import settings

    return settings().cache_dir / "charts"


def _write(path: Path, html: str) -> None:
    # Write then rename, so a reader never sees a half-written page.
    tmp_path = temporary_beside(path)
    tmp_path.write_text(html, encoding="utf-8", newline="\n")
    os.replace(tmp_path, path)


def _draw(chart: Any, cache: Path | None) -> Markup | None:
    return None if chart is None else charts.to_svg(chart, cache)


def _draw_bands(chart: Mapping[str, Any] | None, cache: Path | None) -> dict[str, Any] | None:
    return None if chart is None else dict(chart) | {"svg": charts.to_svg(chart["spec"], cache)}


def write_edition(collected: Mapping[str, Any], out_dir: Path, approval: Mapping[str, Any] | None = None) -> Path:
    """Draw the charts and write the edition and its department pages into `out_dir`;
    return the edition's path. Without `approval` it is a draft, marked on every page;
    with it (approved_by, approved_at, revision, note) it is published."""
    cache = _chart_cache()
    context = dict(collected) | {
        "approval": approval,
        "stylesheet": _stylesheet(collected["official_form"] is not None),
    }
    context["official"] = official_form.issue_marks(collected["official_form"], approval)  # 文号, dates
    context["band_chart"] = _draw_bands(collected["band_chart"], cache)
    context["themes_chart"] = _draw(collected["themes_chart"], cache)
    context["peer_groups"] = [
        group | {"chart": _draw_bands(group["chart"], cache)} for group in collected["peer_groups"]
    ]
    html = ENVIRONMENT.get_template(EDITION_TEMPLATE).render(context)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages_dir = out_dir / context["department_pages"]
    # Departments ranked last time but not now must not keep a stale page.
    if pages_dir.exists():
        shutil.rmtree(pages_dir)
    pages_dir.mkdir()
    template = ENVIRONMENT.get_template(DEPARTMENT_TEMPLATE)
    for page in collected["pages"]:
        page = page | {"trend_chart": _draw(page["trend_chart"], cache)}
        _write(
            pages_dir / f"{wording.page_name(page['ranking']['department_id'])}.html", template.render(context | page)
        )
    # The internal annex of the rating-gaming screens' flags (bulletin.yaml rating_screens):
    # in the draft edition folder, linked from no page; never in a published revision,
    # which is an archive made to be handed out.
    if approval is None:
        (out_dir / ANNEX_PAGE).parent.mkdir(exist_ok=True)
        _write(out_dir / ANNEX_PAGE, ENVIRONMENT.get_template(ANNEX_TEMPLATE).render(context))
    out_path = out_dir / f"{context['edition'].stem}.html"
    _write(out_path, html)
    return out_path


@contextlib.contextmanager
def drawing(editions: int) -> Iterator[Callable[[Mapping[str, Any], Path], None]]:
    """A `draw(collected, out_dir)` that runs write_edition, for up to `editions` editions;
    the block's end waits for all of them and raises the first failure. Several editions
    (a backfill) are drawn in a pool of processes, each edition as soon as it is handed
    over, while the caller reads the next from the marts: vl-convert holds the GIL,
    and the pool's start-up overlaps the reading."""
    workers = min(editions, os.cpu_count() or 1, 4)
    if workers < 2:
        yield write_edition
        return
    from pipelines.process_tree import worker_pool

    pool = worker_pool(workers)
    futures = []
    try:
        yield lambda collected, out_dir: futures.append(pool.submit(write_edition, collected, out_dir))
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def render_edition(
    con: duckdb.DuckDBPyConnection,
    edition: Edition,
    out_dir: Path,
    approval: Mapping[str, Any] | None = None,
    config: BulletinConfig | None = None,
) -> Path:
    """collect_edition then write_edition: the edition and its department pages in `out_dir`."""
    return write_edition(collect_edition(con, edition, config), out_dir, approval)


def render_monthly_bulletin(
    con: duckdb.DuckDBPyConnection, period: Any, out_dir: Path, approval: Mapping[str, Any] | None = None
) -> Path:
    """The monthly edition of `period` (first day of the month)."""
    if period.day != 1:
        raise ValueError(f"period must be the first day of a month, got {period.isoformat()}")
    return render_edition(con, Edition.month(period), out_dir, approval)
