"""Shared fixtures: a small generated city, and an isolated govperf home per test.

Every end-to-end test runs the real thing: generated extract files, a real
DuckDB file, real dbt runs and real Dagster runs on a persistent instance.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import duckdb
import pytest
from hang_watchdog import HangWatchdog

from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT

# July to September 2025: a whole quarter (leader reviews), and the merger of
# 市粮食和物资储备局 at the end of August falls inside.
FIRST_MONTH, LAST_MONTH = "2025-07", "2025-09"
MONTHS = ["2025-07", "2025-08", "2025-09"]
MART_TABLES = [
    "dim_department",
    "dim_indicator",
    "fct_indicator_values",
    "fct_department_scores",
    "fct_rankings",
    "fct_warnings",
    "fct_data_quality",
    "fct_comment_sentiment",
    "fct_anomalies",
    "fct_indicator_anomalies",
    "fct_target_forecasts",
]


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Extracts of a small sample city, generated once per test session."""
    out = tmp_path_factory.mktemp("city") / "inbox"
    generate_city(
        out,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month=FIRST_MONTH,
        last_month=LAST_MONTH,
        transactions=9_000,
    )
    return out


# One cache for the session's homes: charts and jieba's dictionary are built once.
# (The byte-identical rerun test gives its second run a cache of its own.)
SHARED_CACHE = Path(tempfile.mkdtemp(prefix="govperf-test-cache-"))
atexit.register(shutil.rmtree, SHARED_CACHE, ignore_errors=True)


def use_home(patch: pytest.MonkeyPatch, home: Path, inbox: Path) -> None:
    """Point govperf and Dagster at `home`, reading extracts from `inbox`."""
    patch.setenv("GOVPERF_HOME", str(home))
    patch.setenv("GOVPERF_CACHE", str(SHARED_CACHE))
    patch.setenv("GOVPERF_INBOX", str(inbox))
    patch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
        patch.delenv(derived, raising=False)


@pytest.fixture
def govperf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_city: Path) -> Path:
    """A fresh GOVPERF_HOME and DAGSTER_HOME, with its own copy of the inbox."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city, inbox)
    home = tmp_path / "home"
    use_home(monkeypatch, home, inbox)
    return home


def edition_hashes(bulletins: Path) -> dict[str, str]:
    """Every file of every draft edition (HTML, department pages, XLSX), by its SHA-256,
    read through the edition folders' links (monthly/2025-07/bulletin_2025-07.html), each
    edition from the one version its link points to."""
    from pipelines.publish.edition_folder import drafts_in

    hashes = {}
    for draft in drafts_in(bulletins):
        version = draft.current()
        for path in sorted(version.rglob("*")):
            if path.is_file():
                key = f"{draft.edition.folder}/{draft.edition.key}/{path.relative_to(version).as_posix()}"
                hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def export_marts(duckdb_path: Path) -> dict[str, str]:
    """Every mart table as CSV text with its rows in a fixed order."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        exported = {}
        for table in MART_TABLES:
            frame = con.sql(f"select * from marts.{table} order by all").df()
            exported[table] = frame.to_csv(index=False)
        return exported
    finally:
        con.close()


def drafted_on(home: Path, when: str, *editions: str) -> None:
    """Say that every edition `home` drafted (and `editions`) was first drafted at `when`
    (YYYY-MM-DD HH:MM), so that their appeal windows have closed before the sample's
    approval times (pipelines/appeals/window.py): the editions of a test are drafted
    now, and approved at dates in the sample's own time."""
    import json

    from pipelines.appeals.window import first_drafts, first_drafts_path

    keys = sorted(set(first_drafts(home)) | set(editions))
    path = first_drafts_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"edition": k, "drafted_at": when}) + "\n" for k in keys), encoding="utf-8")


def record_as_built(warehouse: Path, home: Path) -> None:
    """Record the marts of a hand-made warehouse in `home`'s ledger as a dbt build
    would, so that approving from it passes the check against the last build."""
    import datetime as dt

    import duckdb

    from pipelines.ledger import events
    from pipelines.ledger.mart_digest import mart_digests

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        digests = mart_digests(con)
    finally:
        con.close()
    events.record_build(home, "hand-made marts", [dt.date(2024, 1, 1)], True, [], digests)
    events.sign(events.ledger_of(home))  # as the build's run signs when it is done


def only_dejavu_fonts(folder: Path) -> Path:
    """A fontconfig file (for FONTCONFIG_FILE) that shows DejaVu alone, no CJK font: the
    checks that a missing CJK font is caught use it. Skips the test without DejaVu."""
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    if not dejavu.is_dir():
        pytest.skip("fonts-dejavu-core is not installed")
    config = folder / "fonts.conf"
    config.write_text(
        f"""<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><dir>{dejavu}</dir><cachedir>{folder / "fc-cache"}</cachedir></fontconfig>
""",
        encoding="utf-8",
    )
    return config


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(HangWatchdog(config), "hang_watchdog")
    # The browser tests' shared fixtures (one run and one chromium for every browser
    # test file), as a plugin: registered here, not imported at the top of this file,
    # because a spawned worker that unpickles a test's function imports this file again
    # (as tests.conftest) and browser_support imports it (a cycle).
    import browser_support

    config.pluginmanager.register(browser_support, "browser_support")


# --- where failed tests stopped, as the last lines of the output -------------------
# CI shows only the end of what a stage printed. A test stopped by pytest-timeout
# (or a crashed worker) is then listed there with the places its traceback passed
# through, innermost last, so a hang says where it hung.

FILE_LOCATION = re.compile(r"^(\S+\.py):(\d+): ", re.MULTILINE)
SITE = re.compile(r"^.*/(site-packages|python3\.\d+)/")  # a library's path from its package
PLACES_SHOWN = 8
_failures: list[tuple[str, list[str], str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        text = str(report.longrepr)
        places = [f"{SITE.sub('', path)}:{line}" for path, line in FILE_LOCATION.findall(text)]
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        _failures.append((f"{report.nodeid} ({report.when})", places[-PLACES_SHOWN:], last.strip()[:300]))


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _failures:
        return  # an xdist worker: its reports reach the controller, which prints them
    print("\nwhere the failed tests stopped (innermost last):", file=sys.__stderr__)
    for test, places, last in _failures:
        print(f"- {test}: {' > '.join(places) or 'no traceback'} | {last}", file=sys.__stderr__)
