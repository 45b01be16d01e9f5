"""Same inputs, same bytes: a second run in the same home, and a file delivered
twice under two names, give the marts of one clean run over a single delivery.
(tests/test_pipeline_e2e.py checks a rerun in a fresh home.)

One reference run over a tiny city (single delivery of every file) is shared:
the same-home rerun runs again in its home, and the duplicate-delivery run
copies every source's file under a second name into one inbox, so one run
covers all sources. These run whole pipelines: slow stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.ingest.mapping import load_mappings
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import edition_hashes, use_home

pytestmark = pytest.mark.slow

# A whole quarter, so that the quarterly leader reviews have their file.
FIRST, LAST = "2025-07", "2025-09"
MAPPINGS = load_mappings(PROJECT_ROOT / "sources" / "mappings")
# Delivered twice through a mapping with a fixed `period:`: the second name carries no month.
FIXED_PERIOD_SOURCE = "leader_reviews"
GOVPERF = str(Path(sys.executable).with_name("govperf"))


def all_marts(duckdb_path: Path) -> dict[str, str]:
    """Every table of the marts schema as CSV, rows in a fixed order."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.sql(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {t: con.sql(f"select * from marts.{t} order by all").df().to_csv(index=False) for t in tables}
    finally:
        con.close()


def published_files() -> dict[str, str]:
    """Every draft edition's bulletin, department pages and export, by SHA-256."""
    return edition_hashes(settings().bulletins)


def staged_counts(duckdb_path: Path) -> dict[str, int]:
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        return {
            m.source: con.sql(f"select count(*) from staging.stg_lake__{m.table.name}").fetchall()[0][0]
            for m in MAPPINGS.values()
        }
    finally:
        con.close()


def _run(home: Path, inbox: Path, config: Path | None = None) -> None:
    """`govperf run` over the months, as an operator runs it (its own process, so
    a GOVPERF_CONFIG is read when the definitions load)."""
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, inbox)
        if config:
            patch.setenv("GOVPERF_CONFIG", str(config))
        done = subprocess.run(
            [GOVPERF, "run", "--from", FIRST, "--to", LAST],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=1200,
        )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def tiny_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inbox = tmp_path_factory.mktemp("tiny_city") / "inbox"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=7,
        first_month=FIRST,
        last_month=LAST,
        transactions=1500,
    )
    return inbox


@pytest.fixture(scope="module")
def single_delivery(tmp_path_factory: pytest.TempPathFactory, tiny_city: Path) -> dict:
    """The reference: one run, every file delivered once."""
    home = tmp_path_factory.mktemp("single") / "home"
    _run(home, tiny_city)
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, tiny_city)
        return {
            "home": home,
            "marts": all_marts(settings().duckdb_path),
            "published": published_files(),
            "staged": staged_counts(settings().duckdb_path),
        }


@pytest.fixture(scope="module")
def double_delivery(tmp_path_factory: pytest.TempPathFactory, tiny_city: Path) -> dict:
    """Every source's latest file also delivered an hour later under a second name,
    both present at the first run. One mapping has a fixed period, so its second
    name carries no month."""
    root = tmp_path_factory.mktemp("double")
    inbox = root / "inbox"
    shutil.copytree(tiny_city, inbox)
    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "sources" / "mappings", config / "mappings")
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", config / "reference")
    duplicates = {}
    for source, mapping in MAPPINGS.items():
        original = sorted(p for p in inbox.glob(mapping.file_pattern) if mapping.period_of(p.name))[-1]
        period = mapping.period_of(original.name)
        if source == FIXED_PERIOD_SOURCE:
            assert len(list(inbox.glob(mapping.file_pattern))) == 1, "a fixed period needs its only file"
            mapping_file = config / "mappings" / f"{source}.yaml"
            data = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))
            data["period"] = f"{period:%Y-%m}"
            mapping_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
            copy = original.with_name(original.name.split("_")[0] + "_重发" + original.suffix)
            assert mapping.model_copy(update={"period": None}).period_of(copy.name) is None
        else:
            copy = original.with_name(original.stem + "_重发" + original.suffix)
            assert mapping.period_of(copy.name) == period
        shutil.copyfile(original, copy)
        later = original.stat().st_mtime + 3600
        os.utime(copy, (later, later))
        duplicates[source] = (original.relative_to(inbox).as_posix(), copy.relative_to(inbox).as_posix(), period)
    home = root / "home"
    _run(home, inbox, config)
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, inbox)
        db = settings().duckdb_path
        con = duckdb.connect(str(db), read_only=True)
        try:
            data_checks = (
                con.sql("select * from marts.fct_data_quality where check_name <> 'duplicate_delivery' order by all")
                .df()
                .to_csv(index=False)
            )
        finally:
            con.close()
        return {
            "duckdb": db,
            "marts": all_marts(db),
            "data_checks_but_duplicates": data_checks,
            "duplicates": duplicates,
            "staged": staged_counts(db),
            "bulletins": settings().bulletins,
        }


def test_a_second_run_in_the_same_home_gives_the_same_bytes(single_delivery, tiny_city, monkeypatch):
    """The marts a run builds never depend on an earlier run of the same inputs:
    fct_data_quality, every mart and every bulletin and export are byte-equal."""
    _run(single_delivery["home"], tiny_city)
    use_home(monkeypatch, single_delivery["home"], tiny_city)
    again = all_marts(settings().duckdb_path)
    assert again["fct_data_quality"] == single_delivery["marts"]["fct_data_quality"]
    assert again == single_delivery["marts"]
    assert published_files() == single_delivery["published"]


def test_a_double_delivery_gives_the_marts_of_a_single_one(single_delivery, double_delivery):
    """Every mart equals the single delivery's; fct_data_quality differs only by the
    duplicate_delivery warnings."""
    single, double = single_delivery["marts"], double_delivery["marts"]
    assert {t: v for t, v in double.items() if t != "fct_data_quality"} == {
        t: v for t, v in single.items() if t != "fct_data_quality"
    }
    assert double_delivery["data_checks_but_duplicates"] == single["fct_data_quality"]


@pytest.mark.parametrize("source", sorted(MAPPINGS))
def test_a_file_delivered_twice_counts_once_with_a_warning(source, single_delivery, double_delivery):
    original, copy, period = double_delivery["duplicates"][source]
    assert double_delivery["staged"][source] == single_delivery["staged"][source] > 0
    con = duckdb.connect(str(double_delivery["duckdb"]), read_only=True)
    try:
        warnings = con.execute(
            "select severity, passed, details from marts.fct_data_quality "
            "where source = ? and period = ? and check_name = 'duplicate_delivery'",
            [source, period],
        ).fetchall()
        statuses = con.execute(
            "select distinct file_name, status from marts.fct_submissions where source = ? and period = ?",
            [source, period],
        ).fetchall()
    finally:
        con.close()
    assert len(warnings) == 1
    severity, passed, details = warnings[0]
    assert severity == "warning" and not passed
    assert original in details and copy in details
    assert statuses == [(original, "current")]
    # Listed in the data-quality appendix of the month's edition.
    edition = next(double_delivery["bulletins"].rglob(f"bulletin_{period:%Y-%m}.html"))
    assert copy in edition.read_text(encoding="utf-8")
