"""Finding a process's descendants in /proc, for tests that check that a stop
left nothing running. Each process is (pid, start time): a reused PID is another."""

from __future__ import annotations

from pathlib import Path


def _fields(pid: int | str) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, session, ... starttime at [19]


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live descendant of `root`, by parent PID."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _fields(entry.name)) and fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), fields[19])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (parent, _start) in table.items() if parent in frontier} - found
        found |= frontier
    return {(pid, table[pid][1]) for pid in found}


def alive(process: tuple[int, str]) -> bool:
    fields = _fields(process[0])
    return fields is not None and fields[0] != "Z" and fields[19] == process[1]
