"""The hang watchdog (tests/hang_watchdog.py) on a planted hang: it names the
test, where it hung and what ran under it, ends the hang, and the stage goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent

PLANTED = """
import subprocess
import time


def test_hangs_in_a_child():
    subprocess.run(["sleep", "600"])  # the watchdog kills the sleep: the run returns


def test_hangs_in_itself():
    time.sleep(600)  # nothing under it to kill: the watchdog ends its process


def test_after_the_hangs():
    assert True
"""

CONFTEST = f"""
import sys

sys.path.insert(0, {str(TESTS)!r})
from hang_watchdog import HangWatchdog


def pytest_configure(config):
    config.pluginmanager.register(HangWatchdog(config), "hang_watchdog")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        print("the conftest's own last words", file=sys.__stderr__, flush=True)
"""


def _run_planted(tmp_path: Path, *options: str, planted: str = PLANTED) -> tuple[int, str, float]:
    (tmp_path / "test_planted.py").write_text(planted, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:timeout", *options, "test_planted.py"],
        cwd=tmp_path,
        env=os.environ | {"GOVPERF_TEST_HANG_AFTER_S": "4", "GOVPERF_TEST_HANG_GRACE_S": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_with_workers_each_hang_is_reported_and_ended_and_the_stage_goes_on(tmp_path):
    code, output, seconds = _run_planted(tmp_path, "-n", "1")
    assert code != 0
    assert seconds < 120, output
    for test, where in [
        ("test_hangs_in_a_child", 'test_planted.py", line 7 in test_hangs_in_a_child'),
        ("test_hangs_in_itself", 'test_planted.py", line 11 in test_hangs_in_itself'),
    ]:
        assert f"HUNG TEST: test_planted.py::{test}" in output, output
        assert where in output, output
    assert "sleep 600" in output  # the process tree under the hung test
    assert "killing" in output  # the second hang's worker was ended
    # The first hang ended when its sleep was killed; the worker of the second was
    # replaced, and ran the test after it.
    assert "1 failed, 2 passed" in output, output
    assert "worker 'gw0' crashed while running 'test_planted.py::test_hangs_in_itself'" in output
    # The reports are repeated after the summary, as the very last lines CI shows.
    summary = output.index("1 failed, 2 passed")
    assert output.index("HUNG TEST: test_planted.py::test_hangs_in_a_child", summary) > summary
    assert output.rindex("HUNG TEST") > output.index("the conftest's own last words")


def test_without_workers_a_hang_in_the_test_process_ends_the_run_with_its_report(tmp_path):
    code, output, seconds = _run_planted(tmp_path, "-n", "0")
    assert code == 3, output
    assert seconds < 120, output
    assert "HUNG TEST: test_planted.py::test_hangs_in_a_child" in output  # ended by killing the sleep
    assert "HUNG TEST: test_planted.py::test_hangs_in_itself" in output
    assert 'test_planted.py", line 11 in test_hangs_in_itself' in output


HOLDS_THE_GIL = """
import ctypes


def test_holds_the_gil():
    ctypes.PyDLL(None).sleep(600)  # libc's sleep, called with the GIL held: no Python thread runs
"""


def test_a_hang_that_holds_the_gil_is_ended_by_faulthandler_with_the_stacks(tmp_path):
    code, output, seconds = _run_planted(tmp_path, "-n", "0", planted=HOLDS_THE_GIL)
    assert code != 0 and seconds < 120, output
    assert "HUNG TEST" not in output  # the watchdog's thread never ran
    assert "Timeout" in output and 'test_planted.py", line 6 in test_holds_the_gil' in output, output


ALLOWED = """
import time

import pytest


@pytest.mark.hang_after(30)
def test_known_to_run_long():
    time.sleep(8)  # twice the stage's 4 s, within its own 30 s: not a hang


def test_hangs_after_it():
    time.sleep(600)
"""


def test_a_test_marked_hang_after_gets_its_own_allowance_and_the_next_test_the_stages(tmp_path):
    code, output, _ = _run_planted(tmp_path, planted=ALLOWED)
    assert "HUNG TEST: test_planted.py::test_known_to_run_long" not in output, output[-3000:]
    assert "HUNG TEST: test_planted.py::test_hangs_after_it" in output, output[-3000:]
    assert code != 0
