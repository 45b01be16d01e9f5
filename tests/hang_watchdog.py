"""A watchdog for tests that hang, registered by conftest.py.

CI shows only what a stage printed, and ends the whole job at its time limit: a
test that hangs in C code (where pytest-timeout's SIGALRM is never handled), or
a worker that stops answering, used to eat the job and say nothing. So:

- every process that runs tests (the only one, or each xdist worker) notes in a
  shared folder which test it is running and since when, and has faulthandler
  dump all its threads' stacks on SIGUSR1;
- the controlling process watches those notes from a thread. A test running for
  longer than GOVPERF_TEST_HANG_AFTER_S (15 minutes) gets a report: the process
  tree under its process (state, CPU time, memory, kernel wait channel) and every
  thread's stack. Then its descendant processes are killed (a hung dbt or browser
  ends, and the test fails with whatever that raises); if the test is still there
  GOVPERF_TEST_HANG_GRACE_S later, its process is killed too (xdist replaces a
  worker and goes on; a run without workers ends).
- the reports are printed when made and again as the last lines of the stage.
- where the tests run in the controlling process itself, a test that holds the GIL
  (and so stops the watchdog's thread) is ended by faulthandler's timer, which
  prints every thread's stack first.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

HANG_AFTER_S = float(os.environ.get("GOVPERF_TEST_HANG_AFTER_S", "900"))
GRACE_S = float(os.environ.get("GOVPERF_TEST_HANG_GRACE_S", "60"))
POLL_S = min(20.0, HANG_AFTER_S / 4)
FOLDER_VARIABLE = "GOVPERF_TEST_WATCH_DIR"  # made by the controller, inherited by workers
STACK_LINES_SHOWN = 120
THREAD_LINES_SHOWN = 25
# Frames of the test runner itself, the same in every dump: left out.
RUNNER_FRAMES = ("/pluggy/", "/_pytest/", "/xdist/", "/execnet/", '"<string>"')


def _runner_name(config: pytest.Config) -> str:
    return config.workerinput["workerid"] if hasattr(config, "workerinput") else "main"


class HangWatchdog:
    def __init__(self, config: pytest.Config) -> None:
        self.is_worker = hasattr(config, "workerinput")
        # xdist's own test for handing tests to workers (-n N, or --tx with --dist).
        distributes = getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))
        self.runs_tests = self.is_worker or not distributes
        if not self.is_worker:
            os.environ[FOLDER_VARIABLE] = tempfile.mkdtemp(prefix="govperf-test-watch-")
        # A worker whose controller did not load this plugin has no folder: no watchdog.
        self.enabled = bool(os.environ.get(FOLDER_VARIABLE))
        self.folder = Path(os.environ.get(FOLDER_VARIABLE, "."))
        self.name = _runner_name(config)
        self.reports: list[str] = []
        self._stacks = None
        # The real stderr, copied now, while pytest's capture is suspended: a report
        # written during a test must not land in that test's captured output.
        self._out = None if self.is_worker else os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8")

    # --- in the process that runs tests -------------------------------------------

    def pytest_sessionstart(self) -> None:
        if not self.enabled:
            return
        if self.runs_tests:
            self._stacks = (self.folder / f"{self.name}.stacks").open("w", encoding="utf-8")
            faulthandler.register(signal.SIGUSR1, file=self._stacks, all_threads=True)
        if not self.is_worker:
            threading.Thread(target=self._watch, name="hang watchdog", daemon=True).start()

    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        # A test known to run long (the Spark engine's) says so: @pytest.mark.hang_after(seconds)
        marker = item.get_closest_marker("hang_after")
        self._after_s = float(marker.args[0]) if marker else HANG_AFTER_S

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.enabled and self.runs_tests:
            after_s = getattr(self, "_after_s", HANG_AFTER_S)
            note = {"test": nodeid, "pid": os.getpid(), "since": time.time(), "after_s": after_s}
            running = self.folder / f"{self.name}.running"
            running.with_suffix(".tmp").write_text(json.dumps(note), encoding="utf-8")
            running.with_suffix(".tmp").replace(running)
            if not self.is_worker:
                # The watchdog is a Python thread: code that holds the GIL and never lets
                # go stops it too. faulthandler's own timer needs no GIL: it prints every
                # thread's stack and ends this process, a little after the watchdog's turn.
                last_resort = after_s + GRACE_S + min(60.0, after_s)
                faulthandler.dump_traceback_later(last_resort, exit=True, file=self._out)

    def pytest_runtest_logfinish(self) -> None:
        if self.enabled and self.runs_tests:
            (self.folder / f"{self.name}.running").unlink(missing_ok=True)
            if not self.is_worker:
                faulthandler.cancel_dump_traceback_later()

    # --- in the controlling process -----------------------------------------------

    def _watch(self) -> None:
        handled: set[tuple[int, str, float]] = set()
        while True:
            time.sleep(POLL_S)
            for running in sorted(self.folder.glob("*.running")):
                try:
                    note = json.loads(running.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # finished (or being replaced) as we looked
                key = (note["pid"], note["test"], note["since"])
                if key in handled or time.time() - note["since"] < note.get("after_s", HANG_AFTER_S):
                    continue
                handled.add(key)
                try:
                    self._end_hang(running, note)
                except Exception as error:  # the watchdog must outlive what it watches
                    self._say(f"HUNG TEST: {note['test']}: the watchdog failed to report it: {error!r}")
                    _kill(note["pid"])

    def _end_hang(self, running: Path, note: dict) -> None:
        pid, test = note["pid"], note["test"]
        minutes = (time.time() - note["since"]) / 60
        stacks = self._stacks_of(running.with_suffix(".stacks"), pid)
        tree = _process_tree(pid)
        report = "\n".join(
            [
                f"HUNG TEST: {test} ran {minutes:.1f} min in process {pid} ({running.stem})",
                _machine(),
                "processes under it (pid, parent, state, CPU time, memory, kernel wait channel, command):",
                *tree,
                "its threads, most recent call first:",
                *stacks,
            ]
        )
        self._say(report)
        for child in reversed(_descendants(pid)):
            _kill(child)
        deadline = time.time() + GRACE_S
        while time.time() < deadline:
            time.sleep(1)
            if not _still_running(running, note):
                return
        self._say(
            f"HUNG TEST: {test} still running {GRACE_S:.0f} s after its child processes were killed: killing {pid}"
        )
        if pid == os.getpid():
            self._print_reports()
            shutil.rmtree(self.folder, ignore_errors=True)
            os._exit(3)
        _kill(pid)

    def _stacks_of(self, stacks_file: Path, pid: int) -> list[str]:
        start = stacks_file.stat().st_size if stacks_file.exists() else 0  # earlier dumps are older hangs'
        if pid == os.getpid():
            faulthandler.dump_traceback(file=self._stacks, all_threads=True)
            self._stacks.flush()
        else:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                return ["(the process is gone)"]
            time.sleep(2)
        try:
            with stacks_file.open("rb") as dump:
                dump.seek(start)
                lines = dump.read().decode("utf-8", errors="replace").splitlines()
        except OSError as error:
            return [f"(no stacks: {error})"]
        return _readable_stacks(lines) or ["(no stacks were written)"]

    def _say(self, report: str) -> None:
        self.reports.append(report)
        print(f"\n{report}\n", file=self._out, flush=True)

    def _print_reports(self) -> None:
        for report in self.reports:
            print(f"\n{report}", file=self._out, flush=True)

    @pytest.hookimpl(trylast=True)  # after conftest's list of failed tests: the very last lines
    def pytest_unconfigure(self) -> None:
        if self._stacks is not None:
            faulthandler.unregister(signal.SIGUSR1)
            self._stacks.close()
        if not self.is_worker:
            self._print_reports()  # again, as the last lines CI shows
            shutil.rmtree(self.folder, ignore_errors=True)


def _readable_stacks(lines: list[str]) -> list[str]:
    """faulthandler's dump, the runner's own frames left out, the thread running a test
    first (faulthandler lists the newest thread first, the main thread last), and at
    most THREAD_LINES_SHOWN lines a thread, so idle pool threads cannot hide the test."""
    threads: list[list[str]] = []
    for line in lines:
        if line.startswith(("Thread 0x", "Current thread 0x")):
            threads.append([line])
        elif threads and line.strip() and not any(frame in line for frame in RUNNER_FRAMES):
            threads[-1].append(line)
    threads.sort(key=lambda block: not any("/test_" in line for line in block))
    shown = [line for block in threads for line in block[: THREAD_LINES_SHOWN + 1]]
    return shown[:STACK_LINES_SHOWN]


def _machine() -> str:
    """What the machine had left: a full temporary folder or no memory can stall a test."""
    free = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        available = int(meminfo["MemAvailable"].split()[0]) / 2**20
        load = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, KeyError, ValueError):
        available, load = float("nan"), ["?"]
    return f"machine: {free:.1f} GiB free in {tempfile.gettempdir()}, {available:.1f} GiB memory available, load {' '.join(load)}"


def _still_running(running: Path, note: dict) -> bool:
    try:
        return json.loads(running.read_text(encoding="utf-8")) == note
    except (OSError, ValueError):
        return False


def _process_table() -> list[tuple[int, int, str]]:
    """(pid, parent pid, a line describing it) for every process, read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            wait = (entry / "wchan").read_text().strip() or "-"
        except OSError:
            continue  # ended as we looked
        # The command name, in parentheses, may hold spaces: the fields after it are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, parent = fields[0], int(fields[1])
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks
        rss_kb = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        line = f"{entry.name} {parent} {state} cpu {cpu_s:.1f}s rss {rss_kb} kB wait {wait}: {command[:240]}"
        rows.append((int(entry.name), parent, line))
    return sorted(rows)


def _descendants(pid: int) -> list[int]:
    """pid's descendants (and its session's, if it leads one): pipelines/process_tree.py."""
    from pipelines.process_tree import tree_of

    return sorted(child for child, _start in tree_of(pid) if child != pid)


def _process_tree(pid: int) -> list[str]:
    wanted = {pid, *_descendants(pid)}
    return [line for child, _, line in _process_table() if child in wanted] or ["(none)"]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
