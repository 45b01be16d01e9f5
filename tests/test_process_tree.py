"""A command run with process_tree.run_whole is stopped whole: a child that
ignores SIGTERM, and one that left for a session of its own, end with it; so do
the helpers of a command that exits by itself. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.settings import PROJECT_ROOT
from tests.processes import alive, descendants

FAMILY = """
import os, signal, subprocess, sys, time
stubborn = "import signal, time; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)]; time.sleep(600)"
subprocess.Popen([sys.executable, "-c", stubborn])
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
sys.exit(3)
"""


def _supervised(tmp_path: Path, lifetime: float) -> subprocess.Popen:
    family = tmp_path / "family.py"
    family.write_text(FAMILY, encoding="utf-8")
    wrapper = (
        "import sys; from pipelines.process_tree import run_whole; "
        f"sys.exit(run_whole([sys.executable, {str(family)!r}, {str(lifetime)!r}], cwd={str(tmp_path)!r}, grace=1.0))"
    )
    process = subprocess.Popen([sys.executable, "-c", wrapper], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def _clean_up(process: subprocess.Popen, started: set[tuple[int, str]]) -> None:
    """After a failure: nothing of the test may outlive it."""
    for leftover in {p for p in started | descendants(process.pid) if alive(p)}:
        os.kill(leftover[0], signal.SIGKILL)
    process.kill()
    process.wait()


def _assert_all_gone(started: set[tuple[int, str]]) -> None:
    deadline = time.monotonic() + 5
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not {p for p in started if alive(p)}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stop_ends_the_whole_tree(tmp_path: Path, stop: signal.Signals):
    process = _supervised(tmp_path, lifetime=600)
    started: set[tuple[int, str]] = set()
    try:
        time.sleep(1.5)  # the supervisor looks at the tree twice a second
        started = descendants(process.pid)
        assert len(started) == 3, started  # the command and its two children
        process.send_signal(stop)
        assert process.wait(timeout=15) == 0  # a stop that was asked for
        _assert_all_gone(started)
    finally:
        _clean_up(process, started)


def test_a_command_that_exits_takes_its_helpers_with_it(tmp_path: Path):
    process = _supervised(tmp_path, lifetime=1)
    started: set[tuple[int, str]] = set()
    try:
        started = descendants(process.pid)
        assert process.wait(timeout=15) == 3  # the command's own status
        _assert_all_gone(started)
    finally:
        _clean_up(process, started)


POOL_OWNER = """
import os, sys, time
from pipelines.process_tree import worker_pool

def pid(_):
    time.sleep(0.2)  # both workers take a task
    return os.getpid()

if __name__ == "__main__":
    pool = worker_pool(2)
    print(*sorted(set(pool.map(pid, range(4)))), flush=True)
    time.sleep(600)
"""


def test_a_pools_workers_end_when_its_owner_is_killed(tmp_path: Path):
    """A pool worker waits on a queue it holds both ends of: without a watch on its
    parent, the workers of a run killed with SIGKILL would wait forever."""
    owner_script = tmp_path / "owner.py"
    owner_script.write_text(POOL_OWNER, encoding="utf-8")
    owner = subprocess.Popen([sys.executable, str(owner_script)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    started = set()
    try:
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        started = {p for p in descendants(owner.pid) if p[0] in workers}
        assert len(started) == 2, (workers, descendants(owner.pid))
        owner.kill()
        owner.wait()
        _assert_all_gone(started)
    finally:
        _clean_up(owner, started)
