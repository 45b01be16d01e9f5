"""What the browser tests share: one pipeline run over the small city with the
September edition approved, Debian's chromium driven by Playwright, and helpers to
open pages offline and check what chromium drew.

The fixtures are session-scoped, in a plugin that tests/conftest.py registers, so the
browser test files (the slow stage runs in one process) share one run and one browser.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pytest

# `conftest` is tests/conftest.py, which registers this module as a plugin once it is loaded.
from conftest import FIRST_MONTH, LAST_MONTH, drafted_on, use_home
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from pypdf import PdfReader

from pipelines.runner import failure_messages, launch

REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = Path(os.environ.get("GOVPERF_TEST_ARTIFACTS") or REPO / "test-artifacts" / "browser")
CHROMIUM = os.environ.get("GOVPERF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags chromium phones home on start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MONTH = LAST_MONTH  # the edition published and printed
PERIOD = dt.date.fromisoformat(f"{MONTH}-01")
TITLE = f"{PERIOD.year}年{PERIOD.month}月政府部门绩效通报"
QUARTER = "2025-Q3"
QUARTER_START, QUARTER_END = dt.date(2025, 7, 1), dt.date(2025, 9, 30)
CJK_FAMILY = re.compile(r"^Noto (Sans|Serif) CJK")
# Vega's SVG: data marks sit in groups classed by mark type and role.
POINTS = "g.mark-symbol.role-mark > path"
RULES = "g.mark-rule.role-mark > line"
LINES = "g.mark-line.role-mark > path"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory, small_city: Path):
    """One full pipeline run for the session's browser tests, and the September edition
    approved. The home's environment is set only while it is made: the fixture lives
    for the whole session, and later tests must not find their homes pointing here."""
    from click.testing import CliRunner

    from pipelines.cli import main
    from pipelines.settings import settings

    home = tmp_path_factory.mktemp("browser_run") / "home"
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, small_city)
        result = launch(FIRST_MONTH, LAST_MONTH)
        assert result.success, failure_messages(result)
        drafted_on(home, "2025-09-20 09:00")  # its appeal window closed (2025-09-26) before the approval below
        approved = CliRunner().invoke(main, ["approve", "--period", MONTH, "--by", "张三", "--at", "2025-10-09 10:30"])
        assert approved.exit_code == 0, approved.output
        made = {
            "home": home,
            "duckdb": settings().duckdb_path,
            "bulletins": settings().bulletins,
            "published": settings().published,
        }
    return made


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if CHROMIUM is None:
        message = "Debian's chromium is missing (.ci/run installs it with fonts-noto-cjk)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright():
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_path: str):
    launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def marts(run):
    """What the warehouse says about the periods shown, read-only."""
    con = duckdb.connect(str(run["duckdb"]), read_only=True)
    try:

        def ranking(period_type: str, first: dt.date, last: dt.date) -> list[tuple[str, int, str]]:
            return con.execute(
                """
                select r.department_id, r.rank, d.department_name
                from marts.fct_rankings r
                join marts.dim_department d
                  on d.department_id = r.department_id and d.valid_from <= r.period
                 and (d.valid_to is null or d.valid_to >= r.period)
                where r.period_type = ? and r.period between ? and ?
                order by r.rank, r.department_id
                """,
                [period_type, first, last],
            ).fetchall()

        return {"month": ranking("month", PERIOD, PERIOD), "quarter": ranking("quarter", QUARTER_START, QUARTER_END)}
    finally:
        con.close()


@pytest.fixture(scope="session")
def pages(run, marts) -> dict[str, Path]:
    """Every page the tests open, by kind (files that do not exist yet included)."""
    top = marts["month"][0][0]
    monthly = run["bulletins"] / "monthly" / MONTH / f"bulletin_{MONTH}.html"
    published = run["published"] / "monthly" / MONTH / "r1" / f"bulletin_{MONTH}.html"
    return {
        "index": run["published"] / "index.html",
        "monthly-draft": monthly,
        "monthly-published": published,
        "department-draft": monthly.parent / f"{monthly.stem}_departments" / f"{top}.html",
        "department-published": published.parent / f"{published.stem}_departments" / f"{top}.html",
        "quarterly-draft": run["bulletins"] / "quarterly" / QUARTER / f"bulletin_{QUARTER}.html",
    }


# ------------------------------------------------------------------ helpers


@dataclass
class Visit:
    """A page opened in its own context, with everything it asked for and complained about."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        offsite = [url for url in self.requests if not url.startswith(("file:", "data:"))]
        assert offsite == [], f"network requests from {self.page.url}: {offsite}"
        assert self.errors == [], f"console or page errors on {self.page.url}: {self.errors}"


def visit(browser: Browser, path: Path) -> Visit:
    assert path.is_file(), f"not written: {path}"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    # Nothing leaves the machine: anything not file:// or data: is aborted (and still recorded).
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(5_000)  # local files: nothing should take long
    seen = Visit(page)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("websocket", lambda socket: seen.requests.append(socket.url))
    page.on(
        "console", lambda message: seen.errors.append(f"console: {message.text}") if message.type == "error" else None
    )
    page.on("pageerror", lambda error: seen.errors.append(f"pageerror: {error}"))
    page.goto(path.as_uri(), wait_until="load")
    return seen


@pytest.fixture
def opened(browser: Browser):
    """visit(), closing every context the test opened."""
    visits: list[Visit] = []

    def _open(path: Path) -> Visit:
        seen = visit(browser, path)
        visits.append(seen)
        return seen

    yield _open
    for seen in visits:
        seen.page.context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True, timeout=60_000)  # a whole edition is ~40,000 px tall
    assert shot.stat().st_size > 10_000, f"{shot} looks empty"
    return shot


def platform_fonts(page: Page, selector: str) -> dict[str, int]:
    """The fonts chromium really drew the node's text with, and how many glyphs each."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"no {selector} on {page.url}"
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        return {f["familyName"]: f["glyphCount"] for f in fonts}
    finally:
        cdp.detach()


def assert_drawn_in_cjk(page: Page, selector: str) -> None:
    """Every glyph of the node's text comes from a Noto CJK face (not a fallback with tofu boxes).

    document.fonts.check() is no use here: for a system font it answers true
    even when the font does not exist. The platform font used is what counts."""
    text = page.inner_text(selector)
    assert re.search(r"[\u4e00-\u9fff]", text), f"{selector} has no Chinese text: {text!r}"
    fonts = platform_fonts(page, selector)
    assert fonts and all(CJK_FAMILY.match(family) for family in fonts), (
        f"{selector} ({text!r}) drawn with {fonts}, not a Noto CJK font"
    )


def table_rows(page: Page, table_id: str) -> list[str]:
    """The department ids of a table's body rows, in order."""
    return page.eval_on_selector_all(
        f"table#{table_id} tbody tr[data-department-id]", "rows => rows.map(r => r.dataset.departmentId)"
    )


def file_of(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def pdf_text(reader: PdfReader) -> str:
    """A PDF's text without whitespace (glyph runs may be split by spaces or line
    breaks) and NFKC-normalised: chromium's PDFs map some Noto CJK glyphs back to
    Kangxi radicals (⽉ for 月, ⼀ for 一), which NFKC folds into the ideographs."""
    text = "".join(page.extract_text() or "" for page in reader.pages)
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def pdf_pattern(needle: str) -> str:
    """A regular expression of needle in which an ideograph also matches a CJK Radicals
    Supplement character (⻔ for 门), which the PDF's ToUnicode map may give instead and
    NFKC leaves as it is."""
    return "".join(f"(?:{re.escape(c)}|[\u2e80-\u2eff])" if "\u4e00" <= c <= "\u9fff" else re.escape(c) for c in needle)


def pdf_has(text: str, needle: str) -> bool:
    """needle in text (see pdf_pattern)."""
    return re.search(pdf_pattern(needle), text) is not None


EDITIONS = {"monthly-draft": "month", "monthly-published": "month", "quarterly-draft": "quarter"}
