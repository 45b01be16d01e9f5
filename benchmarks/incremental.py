"""Time `govperf run` cold, unchanged, with one new month, and with a corrected month.

    .venv/bin/python benchmarks/incremental.py [--workdir DIR] [--keep] [--transactions N]

In a new home (its own GOVPERF_HOME, inbox and cache, so nothing is shared with
var/ or an earlier run):

1. cold         15 months of the sample city (2025-01..2026-03) in the inbox,
                empty home and cache: the whole pipeline.
2. unchanged    the same command again, nothing changed (same bytes, delivery
                times, configuration, code and date).
3. new month    2026-04's files added (from the same generator run), then `govperf run`.
4. corrected    one file of 2025-07 delivered again with one row changed, then
                `govperf run` (its month and every later one are redone).

Each is `govperf run` as a user types it, in a child process. Printed for each:
wall seconds, the peak RSS of the largest process in its tree and the peak of
the tree's sum (sampled every 0.1 s from /proc), and what the command said it
redid. Targets (issue 13): cold ≤ 40 s, RSS ≤ 1 GiB, unchanged ≤ 10 s, new
month ≤ 15 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import GOVPERF, timed

NEW_MONTH = "202604"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--transactions",
        type=int,
        default=None,
        help="the city's service transactions over its 16 months (the sample's by default)",
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="govperf-incremental-"))
    staging, inbox = workdir / "generated", workdir / "inbox"
    env = os.environ | {
        "GOVPERF_HOME": str(workdir / "home"),
        "GOVPERF_INBOX": str(inbox),
        "GOVPERF_CACHE": str(workdir / "cache"),
    }
    env.pop("DAGSTER_HOME", None)
    env.pop("GOVPERF_DUCKDB", None)
    subprocess.run(
        [str(GOVPERF), "sample", "--out", str(staging), "--last-month", "2026-04"]
        + (["--transactions", str(args.transactions)] if args.transactions else []),
        env=env,
        check=True,
        capture_output=True,
    )
    new_files = []
    for path in sorted(staging.rglob("*.*")):
        target = inbox / path.relative_to(staging)
        if NEW_MONTH in path.name:
            new_files.append((path, target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)

    results = [timed("cold (15 months)", env, "run"), timed("unchanged rerun", env, "run")]
    for source, target in new_files:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    results.append(timed("one new month (2026-04)", env, "run"))
    corrected = sorted(inbox.glob("hotline_complaints/*202507*.csv"))[0]
    text = corrected.read_bytes()
    last_line = text.rstrip(b"\n").rsplit(b"\n", 1)
    corrected.write_bytes(last_line[0] + b"\n")  # one complaint withdrawn from the month's export
    results.append(timed("corrected middle month (2025-07)", env, "run"))

    print(f"\n{'run':36} {'wall s':>8} {'largest RSS MiB':>16} {'tree RSS MiB':>13}")
    for r in results:
        print(f"{r['label']:36} {r['wall']:8.1f} {r['largest'] / 1024:16.0f} {r['sum'] / 1024:13.0f}")
    for r in results:
        print(f"\n{r['label']}:")
        for line in r["said"][:14]:
            print(f"  {line[:200]}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nwork folder: {workdir}")


if __name__ == "__main__":
    main()
