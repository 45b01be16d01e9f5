"""The bulletin as a reader sees it, in Debian's chromium: Chinese text only, labels
that never break, and pages a phone can read.

- Every rendered page (editions, their department pages, the published revision, the
  archive index, the internal annex) is scanned for Latin words in its visible text.
  Names that come from configuration or data (departments, indicators, nodes, peer
  groups, units, codes) are exempt: they are taken out first, as are elements marked
  translate="no" (file names, hashes, the analysts' command, folded away in a
  <details>). What remains must be in ALLOWED, a fixed list.
- At 390 × 844 (a phone) the page itself never scrolls sideways, and no label is
  squeezed to one character a line; the same holds at 1280 wide and in print, where
  no label ("红色预警", "（退步）") is split over two lines.

Shares the browser tests' run (tests/browser_support.py); screenshots go to the
browser tests' artefacts folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from browser_support import ARTEFACTS, MONTH, QUARTER, visit

pytestmark = pytest.mark.slow

# Notation and units a Chinese 通报 writes in Latin letters. Nothing else may appear.
ALLOWED = frozenset(
    {
        "p",  # p 值
        "q",  # q 值 (false discovery rate)
        "km",
        "kg",
        "m",
        "GDP",
        "CPI",
        "PM",
        "AQI",
        "ID",
    }
)


# Which elements are labels (must not stand one character a line), and whether each
# renders on one line. A label's lines are the distinct tops of its text's boxes.
LAYOUT = """(single) => {
  const labels = document.querySelectorAll(
    'th, td, caption, h1, h2, h3, figcaption, summary, .level, .sense, .warning-item, .veto, td.grade');
  const lines = el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
  };
  const squeezed = [], split = [];
  for (const el of labels) {
    if (el.closest('[translate=no]') || el.getClientRects().length === 0) continue;
    const text = (el.innerText || '').replace(/\\s+/g, '');
    if (text.length < 2) continue;
    const n = lines(el);
    if (n >= 2 && n >= text.length) squeezed.push(text.slice(0, 24));
    if (el.matches(single) && n > 1) split.push(text.slice(0, 24));
  }
  return {
    pageWidth: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    squeezed: squeezed.slice(0, 10),
    split: split.slice(0, 10),
  };
}"""
SINGLE_LINE = ".level, .sense, .warning-item"


def _configured_names(duckdb_path: Path) -> list[str]:
    """Departments, indicators, nodes, peer groups and units: text that comes from
    configuration or data, longest first (so a name is taken out before its parts)."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        found = set()
        for sql in (
            "select department_id, department_name, peer_group from marts.dim_department",
            "select indicator_id, indicator_name, unit from marts.dim_indicator",
            "select node_id, node_name, null from marts.dim_catalogue_node",
        ):
            for row in con.execute(sql).fetchall():
                found.update(value for value in row if value)
    finally:
        con.close()
    return sorted(found, key=len, reverse=True)


def _rendered_pages(run) -> list[Path]:
    """Every page of the module's editions: drafts, the published revision, their
    department pages, the internal annex and the archive index."""
    roots = [
        run["bulletins"] / "monthly" / MONTH,
        run["bulletins"] / "quarterly" / QUARTER,
        run["published"] / "monthly" / MONTH / "r1",
    ]
    pages = sorted(page for root in roots for page in root.rglob("*.html"))
    return pages + [run["published"] / "index.html"]


def test_no_latin_words_in_any_rendered_page(run, browser) -> None:
    pages = _rendered_pages(run)
    assert len(pages) > 20, pages  # editions and their department pages
    names = _configured_names(run["duckdb"])
    found: dict[str, str] = {}
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            # What a reader sees: innerText leaves out hidden and folded-away content.
            text = page.evaluate(
                "() => { document.querySelectorAll('[translate=no]').forEach(e => e.remove());"
                " return document.body.innerText; }"
            )
            for name in names:
                text = text.replace(name, " ")
            for word in re.findall(r"[A-Za-z]+", text):
                if word not in ALLOWED and word not in found:
                    at = text.find(word)
                    found[word] = f"{path.name}: …{text[max(0, at - 30) : at + 30]}…".replace("\n", " ")
    finally:
        context.close()
    assert found == {}, "Latin words in visible text:\n" + "\n".join(f"{w}: {where}" for w, where in found.items())


@pytest.mark.parametrize("kind", ["monthly-published", "department-published", "quarterly-draft"])
def test_a_phone_reads_the_page_without_scrolling_it_sideways(kind, pages, browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(pages[kind].as_uri(), wait_until="load")
        layout = page.evaluate(LAYOUT, SINGLE_LINE)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"{kind}-phone.png"), full_page=True, timeout=60_000)
        if kind != "department-published":
            page.locator("#ranking-composite").scroll_into_view_if_needed()
            page.evaluate("() => document.querySelector('#ranking-composite').scrollLeft = 400")
            page.screenshot(path=str(ARTEFACTS / f"{kind}-phone-ranking-scrolled.png"))
    finally:
        context.close()
    # The page does not scroll sideways (a mobile browser would widen its layout
    # viewport to a page wider than the screen, so the bound is the screen's width).
    assert layout["pageWidth"] <= 390, layout
    assert layout["squeezed"] == [], layout
    assert layout["split"] == [], layout


def test_labels_stay_whole_on_a_wide_screen_and_in_print(pages, browser) -> None:
    seen = visit(browser, pages["monthly-published"])
    try:
        wide = seen.page.evaluate(LAYOUT, SINGLE_LINE)
        seen.page.emulate_media(media="print")
        seen.page.set_viewport_size({"width": 718, "height": 1000})  # A4 less the @page margins, at 96 dpi
        printed = seen.page.evaluate(LAYOUT, SINGLE_LINE)
        seen.page.screenshot(path=str(ARTEFACTS / "monthly-published-print-media.png"))
    finally:
        seen.page.context.close()
    assert wide["squeezed"] == [] and wide["split"] == [], wide
    assert printed["squeezed"] == [] and printed["split"] == [], printed
