"""`govperf sample --province`: thousands of units over one year, as a configuration
folder and an inbox, checked by the pipeline's own loaders; refused up front when
the disk cannot hold it; and a real run over a small province ranks every unit."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.reference import load_departments, load_yaml_model
from pipelines.sample.province import PROVINCE_MEMORY_LIMIT, ProvinceLayout, province_departments, write_province
from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import WarehouseLimits

SOURCES = PROJECT_ROOT / "sources"
TEMPLATE = yaml.safe_load((SOURCES / "reference" / "departments.yaml").read_text(encoding="utf-8"))["departments"]


def test_five_thousand_units_are_distinct_and_their_references_stay_in_their_city():
    units = province_departments(TEMPLATE, 5_000, seed=1)
    assert len(units) == 5_000
    assert len({u["id"] for u in units}) == 5_000
    assert len({u["name"] for u in units}) == 5_000
    aliases = [a for u in units for a in u["aliases"]]
    assert len(set(aliases)) == len(aliases), "an alias shared by two units would be ambiguous"
    assert not set(aliases) & {u["name"] for u in units}
    by_id = {u["id"]: u for u in units}
    for unit in units:
        for reference in ("parent_id", "merged_into"):
            target = unit.get(reference)
            assert target is None or (target in by_id and target[:4] == unit["id"][:4]), (unit, reference)
    cities = {u["id"][:4] for u in units}
    assert len(cities) == -(-5_000 // len(TEMPLATE))
    # The last city is cut short; a bureau or successor cut off with it is dropped.
    last = [u for u in units if u["id"][:4] == max(cities)]
    assert len(last) == 5_000 - len(TEMPLATE) * (len(cities) - 1)


def test_a_small_province_is_a_configuration_the_pipeline_loads_and_a_year_of_extracts(tmp_path: Path):
    summary = write_province(tmp_path / "p", config_from=SOURCES, units=150, transactions=6_000, year=2025, seed=3)
    layout = ProvinceLayout(tmp_path / "p")
    registry = load_departments(layout.config / "reference")  # the pipeline's own validation
    assert len(registry.departments) == 150
    limits = load_yaml_model(layout.config / "reference" / "warehouse.yaml", WarehouseLimits)
    assert limits.memory_limit == PROVINCE_MEMORY_LIMIT  # a province's medians need more than the city's 1GB
    assert sorted(p.name for p in (layout.config / "mappings").iterdir()) == sorted(
        p.name for p in (SOURCES / "mappings").iterdir()
    )
    months = sorted(p.name for p in (layout.inbox / "service_transactions").iterdir())
    assert months == [f"好差评明细_2025{m:02d}.csv" for m in range(1, 13)]
    assert summary.rows["service_transactions"] == 6_000
    seen = set()
    for path in (layout.inbox / "service_transactions").iterdir():
        with path.open(encoding="gbk", newline="") as handle:
            seen |= {row["部门编码"] for row in csv.DictReader(handle)}
    active = {d.id for d in registry.departments if d.valid_from.year <= 2025}
    assert seen <= {d.id for d in registry.departments}
    assert len(seen) >= 0.95 * len(active)  # a few planned gaps aside, every unit has cases


def test_a_province_the_disk_cannot_hold_is_refused_before_anything_is_written(tmp_path: Path):
    out = tmp_path / "p"
    with pytest.raises(OSError, match=r"GB free, but .* transactions need about"):
        write_province(out, config_from=SOURCES, units=10, transactions=10**14)
    assert not any(out.rglob("*"))


def test_a_province_is_never_generated_from_its_own_configuration(tmp_path: Path):
    write_province(tmp_path / "p", config_from=SOURCES, units=5, transactions=200, seed=3)
    config = ProvinceLayout(tmp_path / "p").config
    before = sorted(p.read_bytes() for p in config.rglob("*") if p.is_file())
    with pytest.raises(ValueError, match="is the province's own"):
        write_province(tmp_path / "p", config_from=config, units=5, transactions=200, seed=3)
    assert sorted(p.read_bytes() for p in config.rglob("*") if p.is_file()) == before


def test_the_cli_asks_for_a_folder_and_refuses_units_without_a_province():
    runner = CliRunner()
    asked = runner.invoke(main, ["sample", "--province"])
    assert asked.exit_code == 2 and "a province needs --out" in asked.output
    refused = runner.invoke(main, ["sample", "--units", "10"])
    assert refused.exit_code == 2 and "--units is for a province" in refused.output


@pytest.mark.slow
def test_a_run_over_a_small_province_ranks_every_unit(tmp_path: Path):
    out = tmp_path / "province"
    govperf = str(Path(sys.executable).with_name("govperf"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    env |= {"GOVPERF_HOME": str(tmp_path / "home"), "GOVPERF_CACHE": str(tmp_path / "cache")}
    made = subprocess.run(
        [govperf, "sample", "--province", "--out", str(out), "--units", "300", "--transactions", "20000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    layout = ProvinceLayout(out)
    assert f"GOVPERF_CONFIG={layout.config} GOVPERF_INBOX={layout.inbox}" in made.stdout
    env |= {"GOVPERF_CONFIG": str(layout.config), "GOVPERF_INBOX": str(layout.inbox)}
    ran = subprocess.run(
        [govperf, "run", "--from", "2025-11", "--to", "2025-12"], env=env, capture_output=True, text=True, timeout=1200
    )
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    con = duckdb.connect(str(tmp_path / "home" / "warehouse" / "govperf.duckdb"), read_only=True)
    try:
        ranked = con.execute(
            "select count(distinct department_id), count(*) from marts.fct_rankings "
            "where period = date '2025-12-01' and period_type = 'month'"
        ).fetchall()[0]
    finally:
        con.close()
    registry = load_departments(layout.config / "reference")
    in_office = [d for d in registry.departments if d.valid_to is None or d.valid_to.isoformat() >= "2025-12-01"]
    assert ranked[0] == ranked[1] == len(in_office)
