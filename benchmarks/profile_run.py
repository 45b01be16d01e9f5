"""Where a `govperf run` spent its time: per step, per dbt node, per edition.

    .venv/bin/python benchmarks/profile_run.py [--home DIR] [--run RUN_ID] [--nodes 15]

Reads the home's Dagster event log (the latest run unless --run is given) and the
run_results.json of that run's dbt invocation. Prints each step's wall time, the
gaps between steps (Dagster's own work), the slowest dbt nodes, and each edition's
drawing time from the bulletin step's log lines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=ROOT / "var")
    parser.add_argument("--run", default=None, help="a run id (default: the latest run)")
    parser.add_argument("--nodes", type=int, default=15, help="how many of the slowest dbt nodes to list")
    args = parser.parse_args()
    os.environ["DAGSTER_HOME"] = str(args.home.resolve() / "dagster_home")
    import dagster as dg

    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(filters=dg.RunsFilter(run_ids=[args.run]) if args.run else None, limit=1)
    if not runs:
        raise SystemExit(f"no run in {os.environ['DAGSTER_HOME']}")
    run = runs[0]
    logs = instance.all_logs(run.run_id)
    first, last = logs[0].timestamp, logs[-1].timestamp
    print(f"run {run.run_id} ({run.job_name}, {run.status.value}): {last - first:.1f} s from first to last event")

    started: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    for entry in logs:
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED") and entry.step_key in started:
            spans.append((entry.step_key, started[entry.step_key], entry.timestamp))
    print(f"\n{'step':60} {'start s':>8} {'wall s':>8}")
    busy = 0.0
    for key, start, end in sorted(spans, key=lambda s: s[1]):
        print(f"{key[:60]:60} {start - first:8.1f} {end - start:8.1f}")
        busy += end - start
    print(f"{'sum of steps':60} {'':8} {busy:8.1f}")

    _dbt_nodes(args.home, run.run_id, args.nodes)
    _editions(logs)


def _dbt_nodes(home: Path, run_id: str, shown: int) -> None:
    invocations = sorted((home / "dbt" / "target").glob(f"*-{run_id[:8]}-*"))
    if not invocations:
        return
    results_file = invocations[-1] / "run_results.json"
    if not results_file.exists():
        return
    results = json.loads(results_file.read_text(encoding="utf-8"))
    nodes = sorted(results["results"], key=lambda r: -r.get("execution_time", 0))
    total = sum(r.get("execution_time", 0) for r in nodes)
    print(f"\ndbt: {results.get('elapsed_time', 0):.1f} s elapsed, {len(nodes)} nodes, {total:.1f} s summed")
    for node in nodes[:shown]:
        print(f"  {node['execution_time']:6.2f} s  {node['unique_id']}")


def _editions(logs) -> None:
    writing = re.compile(r"edition (\S+): writing")
    done = re.compile(r"edition (\S+): \S+ -> ")
    starts, ends = {}, {}
    for entry in logs:
        message = entry.user_message or ""
        if match := writing.search(message):
            starts[match.group(1)] = entry.timestamp
        elif match := done.search(message):
            ends[match.group(1)] = entry.timestamp
    if starts:
        print(f"\neditions: {len(starts)} collected, from {min(starts.values()) - logs[0].timestamp:.1f} s")
        if ends:
            print(f"  all drawn and swapped in by {max(ends.values()) - logs[0].timestamp:.1f} s")


if __name__ == "__main__":
    main()
