"""A province on this machine: generate it, run the whole pipeline over it, and time
one hand-written DuckDB query over the same transactions.

    .venv/bin/python benchmarks/province.py --workdir /data/bench-province           # 5,000 units, 50 M
    .venv/bin/python benchmarks/province.py --transactions 5000000 --draws 100

1. `govperf sample --province` (timed, with its peak RSS) into WORKDIR, unless WORKDIR
   already holds a province of the same units, transactions and seed. The size of its
   extracts is printed.
2. The Monte Carlo's draws are set to --draws in the province's own catalogue (the
   issue allows fewer draws for this run; the figure printed says how many).
3. `govperf run` over the year in a new home: wall time, the peak RSS of its largest
   process and of its whole tree, the dbt time and the Monte Carlo's share of it (its
   three models' execution time, from run_results.json), and the disk the home uses.
4. The hand-written query of benchmarks/pipeline_vs_query.py (GBK decoding included).

Targets (issue 13): peak RSS ≤ 4 GiB, within the disk; report the time, its ratio to
the query and the Monte Carlo's share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import ROOT, timed
from pipeline_vs_query import _hand_query

from pipelines.sample.province import ProvinceLayout, write_province_config

MONTE_CARLO = ("int_rank_robustness__scenarios", "int_rank_robustness__draws", "int_rank_robustness")


def _size_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def _environment(workdir: Path, layout: ProvinceLayout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    return env | {
        "GOVPERF_HOME": str(workdir / "home"),
        "GOVPERF_CACHE": str(workdir / "cache"),
        "GOVPERF_CONFIG": str(layout.config),
        "GOVPERF_INBOX": str(layout.inbox),
        "DAGSTER_HOME": str(workdir / "home" / "dagster_home"),
    }


def _generate(layout: ProvinceLayout, env: dict[str, str], units: int, transactions: int, seed: int) -> None:
    marker = layout.out / "generated.json"
    wanted = {"units": units, "transactions": transactions, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"province: reusing {layout.out}'s extracts; its configuration written again", flush=True)
        write_province_config(layout, ROOT / "sources", units, seed)
        return
    args = ["sample", "--province", "--out", str(layout.out), "--units", str(units)]
    city = {k: v for k, v in env.items() if k != "GOVPERF_CONFIG"}  # the template is the city's configuration
    made = timed("generate", city, *args, "--transactions", str(transactions), "--seed", str(seed))
    marker.write_text(json.dumps(wanted))
    print(f"generated in {made['wall']:.0f} s, peak RSS {made['largest'] / 1024:,.0f} MiB", flush=True)


def _set_draws(config: Path, draws: int) -> None:
    path = config / "reference" / "catalogue.yaml"
    catalogue = yaml.safe_load(path.read_text(encoding="utf-8"))
    for version in catalogue["versions"]:
        if version.get("robustness"):
            version["robustness"]["draws"] = draws
    path.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _dbt_times(home: Path) -> tuple[float, float]:
    """(dbt's elapsed time, the Monte Carlo models' execution time) of the last build."""
    builds = sorted((home / "dbt" / "target").glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    if not builds:
        return 0.0, 0.0
    results = json.loads(builds[-1].read_text(encoding="utf-8"))
    monte_carlo = sum(
        r.get("execution_time", 0) for r in results["results"] if r["unique_id"].split(".")[-1] in MONTE_CARLO
    )
    return results.get("elapsed_time", 0.0), monte_carlo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--transactions", type=int, default=50_000_000)
    parser.add_argument("--draws", type=int, default=100, help="Monte Carlo draws for this run [100; catalogue 1000]")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--workdir", type=Path, default=None, help="kept; a province there is reused")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="govperf-province-"))
    workdir.mkdir(parents=True, exist_ok=True)
    layout = ProvinceLayout(workdir / "province")
    env = _environment(workdir, layout)
    try:
        _generate(layout, env, args.units, args.transactions, args.seed)
        inbox = layout.inbox
        print(f"extracts: {_size_gb(inbox):.2f} GB in {inbox}", flush=True)
        _set_draws(layout.config, args.draws)
        shutil.rmtree(workdir / "home", ignore_errors=True)
        shutil.rmtree(workdir / "cache", ignore_errors=True)
        run = timed("run", env, "run")
        dbt, monte_carlo = _dbt_times(workdir / "home")
        home_gb = _size_gb(workdir / "home")

        scratch = workdir / "hand"
        scratch.mkdir(exist_ok=True)
        query, con = _hand_query(inbox, scratch)
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)

        print()
        print(f"units, transactions           {args.units:,}, {args.transactions:,} (Monte Carlo draws: {args.draws})")
        print(f"whole pipeline                {run['wall']:>9.1f} s")
        print(f"hand-written DuckDB query     {query:>9.1f} s  (incl. GBK decoding)")
        print(f"ratio pipeline / query        {run['wall'] / query:>9.2f} x")
        print(f"dbt build                     {dbt:>9.1f} s, of which the Monte Carlo {monte_carlo:.1f} s")
        print(f"Monte Carlo share of the run  {monte_carlo / run['wall']:>9.1%}")
        print(f"peak RSS, largest process     {run['largest'] / 1024:>9,.0f} MiB   target <= 4096")
        print(f"peak RSS, whole tree          {run['sum'] / 1024:>9,.0f} MiB")
        print(f"disk: extracts {_size_gb(inbox):.2f} GB, the run's home {home_gb:.2f} GB")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
