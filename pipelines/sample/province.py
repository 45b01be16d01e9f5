"""A province for scale tests: thousands of units over one year, written as a
configuration folder and an inbox that `govperf run` reads like any other.

The units are the sample city's departments repeated over generated cities
(安州市教育局, 宁阳市教育局, ...), with their peer groups, bureau structure,
aliases and the city's one merger, each city's codes prefixed with its own
(C007D012 is city 7's D012). The extracts come from the sample generator
(generate_city), which writes service transactions day by day, so memory does not
grow with the number of transactions; the disk does, and is checked first.

    govperf sample --province --out /data/province            # 5,000 units, 50 M transactions
    GOVPERF_CONFIG=/data/province/config GOVPERF_INBOX=/data/province/inbox govperf run
"""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipelines.sample.generator import GenerationSummary, generate_city

PROVINCE_UNITS = 5_000
PROVINCE_TRANSACTIONS = 50_000_000
# Extract bytes per service transaction (GBK CSV), with the other sources' share on
# top: 156 measured on a 5,000-unit, 5 M-transaction province (benchmarks/province.py
# prints the extracts' size), rounded up for margin.
BYTES_PER_TRANSACTION = 250
# What a run adds beside the extracts (lake Parquet, history, warehouse, bulletins),
# as a multiple of the extracts, with room to spare.
RUN_DISK_FACTOR = 1.0
# DuckDB's limit for a province's runs (reference/warehouse.yaml; the city's is 1GB).
# Medians and percentiles hold every value of a period's group and cannot spill:
# int_indicator_values__transactions over 5 M transactions of 5,000 units needs more
# than 600MB for them alone, and dbt builds two models at once under the one limit.
# The province's target is a peak RSS of 4 GiB; this leaves room for the process.
PROVINCE_MEMORY_LIMIT = "3GB"
CITY_FIRST = "安宁平丰华兴嘉昌泰盛德清元和永庆承建广临"
CITY_SECOND = "州阳山江川原城林海陵"


@dataclass(frozen=True)
class ProvinceLayout:
    """Where `write_province` puts things under its `out` folder."""

    out: Path

    @property
    def config(self) -> Path:
        return self.out / "config"

    @property
    def inbox(self) -> Path:
        return self.out / "inbox"

    @property
    def departments_yaml(self) -> Path:
        return self.config / "reference" / "departments.yaml"


def city_names(count: int, seed: int) -> list[str]:
    """`count` distinct city names (two characters and 市), in a seeded order."""
    names = [a + b + "市" for a, b in itertools.product(CITY_FIRST, CITY_SECOND)]
    if count > len(names):
        raise ValueError(f"at most {len(names)} cities can be named; asked for {count}")
    order = np.random.default_rng([seed, 7]).permutation(len(names))
    return [names[i] for i in order[:count]]


def _in_city(text: str, city: str) -> str:
    """A city-level name moved to `city`: 市教育局 → 安州市教育局, 共青团市委 → 共青团安州市委."""
    return text.replace("市", city, 1) if "市" in text else city + text


def province_departments(template: list[dict], units: int, seed: int) -> list[dict]:
    """`units` department entries: `template` (departments.yaml entries of one city)
    repeated over as many cities as needed, the last city cut short. A reference
    (bureau, merger) to a unit cut off is dropped with it: the unit stands alone."""
    if units < 1:
        raise ValueError("a province needs at least one unit")
    cities = city_names(math.ceil(units / len(template)), seed)
    entries = []
    for number, city in enumerate(cities, start=1):
        prefix = f"C{number:03d}"
        kept = template[: units - len(entries)]
        ids = {entry["id"] for entry in kept}
        for entry in kept:
            unit = {
                **entry,
                "id": prefix + entry["id"],
                "name": _in_city(entry["name"], city),
                "aliases": [_in_city(alias, city) for alias in entry.get("aliases") or []],
            }
            for reference in ("parent_id", "merged_into"):
                target = entry.get(reference)
                unit[reference] = prefix + target if target in ids else None
            if entry.get("merged_into") and unit["merged_into"] is None:
                unit["valid_to"] = None  # its successor was cut off: it simply goes on
            if unit["merged_into"] is None:
                unit.pop("merged_into")
            entries.append(unit)
    return entries


def disk_needed(transactions: int) -> int:
    """Bytes a province of `transactions` needs: its extracts, and a run over them."""
    return int(transactions * BYTES_PER_TRANSACTION * (1 + RUN_DISK_FACTOR))


def write_province(
    out: Path,
    *,
    config_from: Path,
    units: int = PROVINCE_UNITS,
    transactions: int = PROVINCE_TRANSACTIONS,
    year: int = 2025,
    seed: int = 20250101,
    progress: Callable[[str, int], None] | None = None,
) -> GenerationSummary:
    """Write a province under `out` (see ProvinceLayout): `config/` is `config_from`'s
    mappings and reference with the province's departments.yaml, `inbox/` a year of
    extracts. Refuses, before writing anything, when the disk cannot hold them and a run."""
    layout = ProvinceLayout(Path(out))
    if layout.config.resolve() == Path(config_from).resolve():
        raise ValueError(
            f"the configuration to copy ({config_from}) is the province's own {layout.config}: "
            "unset GOVPERF_CONFIG, or point it at the city's configuration, to generate a province"
        )
    layout.out.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(layout.out).free
    if free < disk_needed(transactions):
        raise OSError(
            f"{layout.out}: {free / 1e9:.1f} GB free, but {transactions:,} transactions need about "
            f"{disk_needed(transactions) / 1e9:.1f} GB (the extracts, and a run's lake and warehouse); "
            "free some space or ask for fewer --transactions"
        )
    write_province_config(layout, Path(config_from), units, seed)
    return generate_city(
        layout.inbox,
        departments_yaml=layout.departments_yaml,
        seed=seed,
        first_month=f"{year}-01",
        last_month=f"{year}-12",
        transactions=transactions,
        progress=progress,
    )


def write_province_config(layout: ProvinceLayout, config_from: Path, units: int, seed: int) -> None:
    """`layout.config`: `config_from`'s mappings and reference, with the province's
    departments.yaml and DuckDB memory limit."""
    template = yaml.safe_load((config_from / "reference" / "departments.yaml").read_text(encoding="utf-8"))
    departments = province_departments(template["departments"], units, seed)
    shutil.rmtree(layout.config, ignore_errors=True)
    shutil.copytree(config_from / "mappings", layout.config / "mappings")
    shutil.copytree(config_from / "reference", layout.config / "reference")
    header = f"# 省级样例: {units:,} 个单位 (generated by `govperf sample --province`, seed {seed})\n"
    layout.departments_yaml.write_text(
        header + yaml.safe_dump({"departments": departments}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    limits_file = layout.config / "reference" / "warehouse.yaml"
    limits = yaml.safe_load(limits_file.read_text(encoding="utf-8"))
    limits["memory_limit"] = PROVINCE_MEMORY_LIMIT
    limits_file.write_text(
        "# The city's limits, with a province's memory limit (pipelines/sample/province.py).\n"
        + yaml.safe_dump(limits, sort_keys=False),
        encoding="utf-8",
    )
