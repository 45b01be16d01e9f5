"""Run a command and all it starts as one unit that a stop ends whole.

`dagster dev` starts a webserver, a daemon and code servers, and the runs it
launches start more. A SIGTERM or SIGINT sent to it alone left those running.
Here the command runs as a child in a session of its own; a stop is forwarded
to the session's process group, and what is still alive after a grace period,
in the group or having left it, is killed.

Descendants are found in /proc (Linux): by session, and by parent, recorded
while the command runs, so one that started a session of its own is known too.
Each is identified by its PID and start time, so a reused PID is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Long enough for Dagster to close its storage; short enough that a stop is a stop.
GRACE_SECONDS = 10.0
POLL_SECONDS = 0.5

Process = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, session id, start time) of a live process, else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name, in brackets, may hold spaces
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _processes() -> dict[int, tuple[str, int, int, int]]:
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def tree_of(root: int, root_alive: bool = True) -> set[Process]:
    """Every process in the session `root` leads, and every descendant of those.
    Once `root` is gone (`root_alive` false) its PID may be another's: only its
    session, which outlives it, is followed."""
    if not os.path.isdir("/proc"):
        return set()
    table = _processes()
    found: set[int] = {pid for pid, (_state, _parent, session, _start) in table.items() if session == root}
    if root_alive:
        found.add(root)
    grew = True
    while grew:
        children = {pid for pid, (_state, parent, _session, _start) in table.items() if parent in found}
        grew = not children <= found
        found |= children
    return {(pid, table[pid][3]) for pid in found if pid in table and table[pid][0] != "Z"}


def alive(process: Process) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[0] != "Z" and stat[3] == process[1]


def _signal_all(leader: int, known: set[Process], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signum)
    for process in known:
        if alive(process):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process[0], signum)


def run_whole(command: list[str], cwd: Path, grace: float = GRACE_SECONDS) -> int:
    """Run `command` until it exits or this process is asked to stop; either way,
    return only when no process it started is left. The exit status is the
    command's, or 0 after a stop that was asked for."""
    child = subprocess.Popen(command, cwd=cwd, start_new_session=True)
    stops: list[int] = []

    def on_stop(signum: int, _frame) -> None:
        stops.append(signum)

    previous = {signum: signal.signal(signum, on_stop) for signum in STOP_SIGNALS}
    try:
        known: set[Process] = set()
        while child.poll() is None and not stops:
            known |= tree_of(child.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=POLL_SECONDS)
        asked = bool(stops)
        if not asked:  # the command exited by itself: the helpers it started go too
            stops.append(signal.SIGTERM)
        _stop(child, known, stops, grace)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if asked else child.returncode


def _stop(child: subprocess.Popen, known: set[Process], stops: list[int], grace: float) -> None:
    """Forward each stop to the tree (a second one kills at once); kill what is
    left after `grace` seconds; return when nothing of it is alive."""
    forwarded = 0
    deadline = time.monotonic() + grace
    while True:
        known |= tree_of(child.pid, root_alive=child.poll() is None)
        while forwarded < len(stops):
            _signal_all(child.pid, known, stops[forwarded])
            forwarded += 1
            if forwarded > 1:
                deadline = time.monotonic()
        child.poll()
        if child.returncode is not None and not any(alive(p) for p in known):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    _signal_all(child.pid, known | tree_of(child.pid, root_alive=child.poll() is None), signal.SIGKILL)
    child.wait()
    end = time.monotonic() + 5  # SIGKILL cannot be refused, but exiting takes a moment
    while any(alive(p) for p in known) and time.monotonic() < end:
        time.sleep(0.05)


def worker_pool(workers: int):
    """A ProcessPoolExecutor of `workers` spawned processes that end when this process
    does, however it ends. A pool's worker waits on a queue whose writing end it holds
    itself, so a parent killed with SIGKILL would leave it waiting forever.
    spawn, not fork: the caller may be a Dagster step with threads running."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    return ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_exit_with_parent, initargs=(os.getpid(),)
    )


def _exit_with_parent(parent: int) -> None:
    """In a pool worker: a daemon thread that ends the process once `parent` is gone
    (the worker is then re-parented, so its parent PID changes)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
