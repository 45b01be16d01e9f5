"""Running a govperf command in a child process and measuring it: wall time, and
the peak RSS of the largest process in its tree and of the tree's sum, sampled
every 0.1 s from /proc (Linux). Shared by the benchmark scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOVPERF = ROOT / ".venv" / "bin" / "govperf"


def tree_rss_kb(root: int) -> tuple[int, int]:
    """(largest process, sum) of the RSS of `root` and its descendants, in KiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="utf-8") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    sizes = [rss.get(pid, 0) for pid in tree]
    return max(sizes, default=0), sum(sizes)


def timed(label: str, env: dict[str, str], *args: str) -> dict:
    """`govperf *args` in a child: {label, wall, largest, sum (KiB), said (its own lines)}."""
    started = time.monotonic()
    child = subprocess.Popen(
        [str(GOVPERF), *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = {"largest": 0, "sum": 0}

    def sample() -> None:
        while child.poll() is None:
            largest, total = tree_rss_kb(child.pid)
            peak["largest"] = max(peak["largest"], largest)
            peak["sum"] = max(peak["sum"], total)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    wall = time.monotonic() - started
    sampler.join()
    if child.returncode != 0:
        sys.exit(f"{label}: govperf {args[0]} failed ({child.returncode}):\n{output[-4000:]}")
    said = [line for line in output.splitlines() if not line.startswith("20") and " - dagster - " not in line]
    return {"label": label, "wall": wall, **peak, "said": said}
