"""The four real exports of the National Bureau of Statistics' 分省年度数据
database (tests/data/real/zh_gov_messy) load with their titles, notes and
empty cells understood: GB18030, a three-line title block naming the indicator,
years as columns, notes below (one with indented continuation lines, one quoted
because it holds a comma), a 数据来源 line, and empty cells.

Configured by examples/nbs (a mapping and a registry of the 31 provinces), no
code. Figures are checked against an independent reading of the raw files.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.land import land_file
from pipelines.ingest.mapping import load_mappings
from pipelines.reference import load_departments
from pipelines.settings import PROJECT_ROOT

EXPORTS = PROJECT_ROOT / "tests" / "data" / "real" / "zh_gov_messy"
EXAMPLE = PROJECT_ROOT / "examples" / "nbs"
MAPPING = load_mappings(EXAMPLE / "mappings")["indicator_observations"]
REGISTRY = load_departments(EXAMPLE / "reference")
INDICATORS = MAPPING.values["indicator_id"]
FILES = sorted(EXPORTS.glob("nbs_分省年度数据_*.csv"))


def read_export(path: Path) -> dict:
    """The file read by hand: title lines, header, province rows, notes."""
    lines = list(csv.reader(io.StringIO(path.read_bytes().decode("gb18030"))))
    header_at = next(i for i, row in enumerate(lines) if row and row[0] == "地区")
    body = [row for row in lines[header_at + 1 :] if any(cell.strip() for cell in row)]
    provinces = [row for row in body if len(row) == len(lines[header_at])]
    notes = [row for row in body if len(row) != len(lines[header_at])]
    indicator = next(row[0] for row in lines[:header_at] if row and row[0].startswith("指标"))[3:]
    years = [int(h.removesuffix("年")) for h in lines[header_at][1:]]
    values = {
        (row[0], year): (float(cell) if cell.strip() else None)
        for row in provinces
        for year, cell in zip(years, row[1:])
    }
    return {
        "indicator": indicator,
        "provinces": provinces,
        "notes": notes,
        "values": values,
        "header_line": header_at + 1,
    }


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_export_lands_whole_with_its_title_notes_and_empty_cells(tmp_path, path):
    expected = read_export(path)
    landing = land_file(path, path.name, MAPPING, REGISTRY, tmp_path / "lake", tmp_path / "archive")
    assert landing.file_error is None
    assert landing.encoding == "gb18030"
    assert landing.header_line == expected["header_line"] == 4
    # Every province row read and accepted; the notes (incl. continuation lines
    # and the quoted note) and 数据来源 are neither records nor quarantined.
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (31, 31, 0)
    assert landing.notes_rows == len(expected["notes"]) >= 2
    con = duckdb.connect()
    landed = con.sql(
        f"select d.name, year(o.period), o.indicator_id, o.value from '{tmp_path}/lake/indicator_observations/*/*.parquet' o "
        "join (select unnest(?) as id, unnest(?) as name) d on d.id = o.department_id",
        params=[[d.id for d in REGISTRY.departments], [d.name for d in REGISTRY.departments]],
    ).fetchall()
    # One observation per province and year; an empty cell is a row with no value (a gap), not a zero.
    assert {r[2] for r in landed} == {INDICATORS[expected["indicator"]]}
    assert {(name, year): value for name, year, _, value in landed} == expected["values"]
    assert any(v is None for v in expected["values"].values()) == any(r[3] is None for r in landed)


def test_a_file_whose_title_names_no_indicator_is_refused_with_its_lines(tmp_path):
    text = FILES[0].read_bytes().decode("gb18030").replace("指标：", "说明：", 1)
    broken = tmp_path / "nbs_分省年度数据_broken.csv"
    broken.write_bytes(text.encode("gb18030"))
    landing = land_file(broken, broken.name, MAPPING, REGISTRY, tmp_path / "lake", tmp_path / "archive")
    assert landing.file_error and "nbs_分省年度数据_broken.csv: lines 1-3: no title line matches" in landing.file_error
    assert landing.rows_accepted == 0 and landing.rows_read == landing.rows_quarantined


@pytest.mark.slow
def test_provinces_are_scored_per_resident_from_the_exports(tmp_path):
    """`govperf run` for 2016 over the four files: output per resident divides the
    GDP export by the population export, province by province."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVPERF_")} | {
        "GOVPERF_HOME": str(home),
        "GOVPERF_CONFIG": str(EXAMPLE),
        "GOVPERF_INBOX": str(EXPORTS),
        "DAGSTER_HOME": str(home / "dagster_home"),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "govperf"), "run", "--from", "2016-01", "--to", "2016-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    exports = {read_export(p)["indicator"]: read_export(p)["values"] for p in FILES}
    gdp, population = exports["地区生产总值(亿元)"], exports["年末常住人口(万人)"]
    aged, sample = exports["65岁及以上人口数(人口抽样调查)(人)"], exports["人口数(人口抽样调查)(人)"]
    con = duckdb.connect(str(home / "warehouse" / "govperf.duckdb"), read_only=True)
    rows = con.sql(
        "select d.department_name, v.indicator_id, v.raw_value from marts.fct_indicator_values v "
        "join marts.dim_department d using (department_id) where v.period = '2016-01-01' and v.period_type = 'month'"
    ).fetchall()
    ranked = con.sql("select count(*) from marts.fct_rankings where period = '2016-01-01'").fetchall()[0][0]
    got = {(name, indicator): value for name, indicator, value in rows}
    assert len(got) == 62 and ranked == 31
    for name in {name for name, _ in got}:
        assert got[(name, "gdp")] == pytest.approx(gdp[(name, 2016)] / population[(name, 2016)], rel=1e-9)
        assert got[(name, "sample_population_65plus")] == pytest.approx(
            aged[(name, 2016)] / sample[(name, 2016)], rel=1e-9
        )
