"""Time the Monte Carlo rank robustness model (int_rank_robustness) in dbt.

    .venv/bin/python benchmarks/rank_robustness.py --units 60 --draws 1000
    .venv/bin/python benchmarks/rank_robustness.py --units 5000 --draws 1000

Builds a lake of synthetic indicator observations (one month, `--units` units in
5 peer groups, 12 indicators in 3 dimensions, every normalisation), with a
catalogue whose robustness design perturbs weights by 25 % and draws among four
normalisations and three aggregations. Runs the models the Monte Carlo reads,
then `dbt run` of its three models (the scenarios and their batches, the draws'
ranks built a batch at a time, the bands) and prints their execution time from
dbt's run_results.json, the whole command's time (dbt start-up included), the
rows it scored, the number of batches and the dbt process's peak RSS. DuckDB's
limits are reference/warehouse.yaml's (memory_limit, monte_carlo_batch_rows).

Target (issue 3): seconds for 60 departments and 1,000 draws; under a minute for
5,000 units.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

ROOT = Path(__file__).resolve().parents[1]
MONTE_CARLO = ["int_rank_robustness__scenarios", "int_rank_robustness__draws", "int_rank_robustness"]
sys.path.insert(0, str(ROOT))

from pipelines.ingest.assets import REFERENCE_TABLES, ensure_lake_schemas  # noqa: E402
from pipelines.parquet import write_table  # noqa: E402
from pipelines.reference import reference_tables  # noqa: E402
from pipelines.transform.project import dbt_environment, dbt_executable  # noqa: E402

PERIOD = "2025-01-01"
METHODS = ["min_max", "z_score", "percentile_rank", "distance_to_target", "goalposts"]


def catalogue(draws: int) -> dict:
    dimensions = []
    for d in range(3):
        children = []
        for i in range(4):
            k = 4 * d + i
            node = {
                "indicator": f"ind_{k:02d}",
                "name": f"指标{k}",
                "weight": 1 + i,
                "unit": "%",
                "direction": "higher" if k % 3 else "lower",
                "normalisation": METHODS[k % len(METHODS)],
            }
            if node["normalisation"] == "distance_to_target":
                node["target"] = 80 if node["direction"] == "higher" else 20
            if node["normalisation"] == "goalposts":
                node["goalposts"] = [0, 100]
            children.append(node)
        dimensions.append(
            {
                "id": f"dim_{d}",
                "name": f"维度{d}",
                "weight": 1 + d,
                "aggregation": "geometric" if d == 2 else "arithmetic",
                "children": children,
            }
        )
    return {
        "versions": [
            {
                "version": "bench",
                "effective_from": "2025-01-01",
                "reason": "benchmark",
                "grades": [{"grade": "优秀", "min_score": 85, "max_share": 0.2}, {"grade": "合格", "min_score": 0}],
                "adjustment_caps": {"bonus": 5, "penalty": 10},
                "robustness": {
                    "draws": draws,
                    "seed": 7,
                    "weight_perturbation": 0.25,
                    "normalisations": ["catalogue", "min_max", "z_score", "percentile_rank"],
                    "aggregations": ["catalogue", "arithmetic", "geometric"],
                },
                "tree": {"id": "composite", "name": "综合", "children": dimensions},
            }
        ]
    }


def build_lake(root: Path, units: int, draws: int) -> Path:
    reference = root / "reference"
    reference.mkdir(parents=True)
    (reference / "catalogue.yaml").write_text(yaml.safe_dump(catalogue(draws), allow_unicode=True), encoding="utf-8")
    (reference / "holidays.yaml").write_text("years: {}\n", encoding="utf-8")
    departments = [
        {"id": f"U{u:05d}", "name": f"单位{u}", "peer_group": f"G{u % 5}", "valid_from": "2025-01-01"}
        for u in range(units)
    ]
    (reference / "departments.yaml").write_text(yaml.safe_dump({"departments": departments}), encoding="utf-8")

    lake = root / "lake"
    tables = reference_tables(reference)
    for name in REFERENCE_TABLES:
        write_table(tables[name], lake / "reference" / f"{name}.parquet")
    ensure_lake_schemas(lake)
    rng = np.random.default_rng(1)
    rows = units * 12
    values = rng.gamma(4.0, 12.0, rows).clip(0, 100)
    observations = pa.table(
        {
            "department_id": pa.array([f"U{u:05d}" for u in range(units) for _ in range(12)]),
            "indicator_id": pa.array([f"ind_{k:02d}" for _ in range(units) for k in range(12)]),
            "value": pa.array(values, pa.float64()),
            "n_obs": pa.array(np.full(rows, 100), pa.int64()),
            "_file_name": pa.array(["bench.csv"] * rows),
            "_file_hash": pa.array(["0" * 64] * rows),
            "_period": pa.array([dt.date.fromisoformat(PERIOD)] * rows, pa.date32()),
            "_line": pa.array(np.arange(2, rows + 2), pa.int64()),
        }
    )
    write_table(observations, lake / "indicator_observations" / "2025-01" / "bench.parquet")
    return lake


def dbt(args: list[str], env: dict[str, str], target: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [dbt_executable(), *args, "--target-path", str(target), "--log-path", str(target)],
        cwd=ROOT / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"dbt {args[0]} failed:\n{done.stdout[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=60)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="govperf_mc_") as tmp:
        root = Path(tmp)
        lake = build_lake(root, args.units, args.draws)
        db = root / "warehouse.duckdb"
        env = os.environ | dbt_environment() | {"GOVPERF_LAKE": str(lake), "GOVPERF_DUCKDB": str(db)}
        dbt_vars = json.dumps({"period_start": PERIOD, "period_end": PERIOD, "lookback_months": 1})
        dbt(
            ["run", "--select", "+int_rankings", "stg_reference__robustness_draws", "--vars", dbt_vars],
            env,
            root / "target",
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        wall = dbt(["run", "--select", *MONTE_CARLO, "--vars", dbt_vars], env, root / "target")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far, in KiB
        results = json.loads((root / "target" / "run_results.json").read_text())
        model_seconds = sum(r["execution_time"] for r in results["results"])
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            banded = con.execute(
                "select count(*), avg(rank_p95 - rank_p05) from intermediate.int_rank_robustness"
            ).fetchall()[0]
            batches = con.execute("select max(batch) from intermediate.int_rank_robustness__scenarios").fetchall()[0][0]
        scored = args.units * 12 * args.draws
        print(f"units {args.units:,}, draws {args.draws:,}: {scored:,} indicator scores in the Monte Carlo")
        print(
            f"  {', '.join(MONTE_CARLO)}: {model_seconds:.1f} s in DuckDB, {batches} batches; whole `dbt run` {wall:.1f} s"
        )
        print(f"  {banded[0]:,} units banded, mean 5-95% band width {banded[1]:.1f} ranks")
        if peak > before:
            print(f"  peak RSS of the dbt process: {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
