"""Draft editions are swapped in whole: writers of one edition at once, a reader polling
meanwhile, and a writer killed half-way, on the bulletin tests' hand-made marts.

Two warehouses give two different editions of March (A and B, other departments),
so a mix of two writes, or a partial one, shows as a set of files equal to neither."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.config import Edition
from pipelines.publish.edition_folder import DraftEdition, lock_holder, locked, write_drafts
from tests.test_bulletin_content import CONFIG
from tests.test_bulletin_render import MARCH, _build_marts

EDITION = Edition.month(MARCH)


def _warehouse(path: Path, extra: int, spread: float) -> Path:
    """The hand-made marts with `extra` more ranked departments, copies of D01 whose
    scores differ by `spread` each (so each page draws a chart of its own)."""
    _build_marts(path)
    con = duckdb.connect(str(path))
    for n in range(1, extra + 1):
        new, shift = f"X{n:02d}", n * spread
        con.execute(
            "insert into marts.dim_department select ?, department_name || ?, peer_group, parent_id, "
            "valid_from, valid_to from marts.dim_department where department_id = 'D01'",
            [new, str(n)],
        )
        con.execute(
            "insert into marts.fct_rankings by name select * replace (? as department_id, "
            "composite_score - ? as composite_score, rank + ? as rank) from marts.fct_rankings "
            "where department_id = 'D01'",
            [new, shift, 10 + n],
        )
        for table in ("fct_department_scores", "fct_indicator_values"):
            con.execute(
                f"insert into marts.{table} by name select * replace (? as department_id, score - ? as score) "
                f"from marts.{table} where department_id = 'D01'",
                [new, shift],
            )
    con.close()
    return path


def _files(version: Path) -> dict[str, str]:
    """Every file of an edition version, by its SHA-256."""
    return {
        p.relative_to(version).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version.rglob("*"))
        if p.is_file()
    }


def _write(bulletins: Path, warehouse: Path, run: str, times: int = 1, waits: queue.Queue | None = None) -> None:
    """A writer of the edition, as the bulletin asset is."""
    for attempt in range(times):
        write_drafts(
            bulletins,
            [EDITION],
            lock_holder(f"{run}-{attempt}"),
            warehouse=warehouse,
            config=CONFIG,
            on_wait=None if waits is None else waits.put,
        )


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Warehouses A and B and their editions, each written alone in a fresh home."""
    root = tmp_path_factory.mktemp("edition_folder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVPERF_CACHE", str(root / "cache"))
        made = {
            "A": _warehouse(root / "a.duckdb", extra=8, spread=0.5),
            "B": _warehouse(root / "b.duckdb", extra=3, spread=1.25),
        }
        reference = {}
        for name, warehouse in made.items():
            _write(root / f"alone_{name}", warehouse, f"alone-{name}")
            reference[name] = _files(DraftEdition(root / f"alone_{name}", EDITION).current())
    assert reference["A"] != reference["B"]
    assert {"bulletin_2024-03.html", "绩效排名_2024-03.xlsx", "bulletin_2024-03_departments/X08.html"} <= set(
        reference["A"]
    )
    return {"root": root, "warehouse": made, "reference": reference}


def _observe(draft: DraftEdition) -> dict[str, str] | None:
    """What a reader sees of the edition now: resolve the link once, read from there.
    None before any edition exists, or when the version was cleaned up while being read
    (allowed: two more writes finished meanwhile)."""
    version = draft.current()
    if version is None:
        return None
    try:
        return _files(version)
    except FileNotFoundError:
        if version.exists():
            raise
        return None


def test_parallel_writers_never_show_a_mixed_or_partial_edition(editions, tmp_path, monkeypatch):
    monkeypatch.setenv("GOVPERF_CACHE", str(editions["root"] / "cache"))
    bulletins = tmp_path / "bulletins"
    waits: queue.Queue[str] = queue.Queue()
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            _write(bulletins, editions["warehouse"][name], f"run-{name}", 3, waits)
        except BaseException as error:  # reported by the test thread
            failures.append(error)

    # Threads, not processes, to stay fast: flock locks open files, so they exclude each other too.
    writers = [threading.Thread(target=writer, args=(name,)) for name in ("A", "B")]
    for thread in writers:
        thread.start()
    draft = DraftEdition(bulletins, EDITION)
    seen, observations = set(), 0
    while any(thread.is_alive() for thread in writers):
        time.sleep(0.002)
        observed = _observe(draft)
        if observed is None:
            continue
        observations += 1
        match = [name for name, files in editions["reference"].items() if files == observed]
        assert match, f"a reader saw a mixed or partial edition: {sorted(observed)}"
        seen.add(match[0])
    for thread in writers:
        thread.join()
    assert not failures, failures
    assert observations > 0
    assert _files(draft.current()) in editions["reference"].values()
    # The current version and the one before it are kept; older ones are gone.
    assert len(list(draft.versions.iterdir())) == 2
    assert not list(bulletins.rglob("*.partial")) and not list(bulletins.rglob("*.link"))
    messages = list(waits.queue)
    assert all(m.startswith("waiting for edition 2024-03: held by run run-") for m in messages), messages
    print(f"{observations} complete observations ({sorted(seen)}), {len(messages)} waits: {messages[:2]}")


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_previous_edition(editions, tmp_path, monkeypatch):
    bulletins = tmp_path / "bulletins"
    monkeypatch.setenv("GOVPERF_CACHE", str(editions["root"] / "cache"))
    _write(bulletins, editions["warehouse"]["A"], "first")
    draft = DraftEdition(bulletins, EDITION)
    before = draft.current()
    # A cold chart cache and many departments of their own: the killed write is slow.
    slow = _warehouse(tmp_path / "slow.duckdb", extra=30, spread=0.37)
    monkeypatch.setenv("GOVPERF_CACHE", str(tmp_path / "cold_cache"))
    child = multiprocessing.get_context("spawn").Process(target=_write, args=(bulletins, slow, "killed"))
    child.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.is_alive():
        pages = [p for p in draft.versions.glob("*/bulletin_2024-03_departments/*.html") if before not in p.parents]
        if len(pages) >= 3:
            break
        time.sleep(0.005)
    assert child.is_alive(), "the writer finished before it could be killed half-way"
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    half = [v for v in draft.versions.iterdir() if v != before]
    assert len(half) == 1 and len(list(half[0].rglob("*.html"))) < 31  # it was killed half-way
    # Readers still see the complete edition of before, and only it.
    assert draft.current() == before
    assert _files(draft.link) == editions["reference"]["A"]
    # The next writer takes the lock the dead one held, and removes its half version.
    monkeypatch.setenv("GOVPERF_CACHE", str(editions["root"] / "cache"))
    _write(bulletins, editions["warehouse"]["B"], "after")
    assert _files(draft.link) == editions["reference"]["B"]
    assert sorted(draft.versions.iterdir()) == sorted([before, draft.current()])
    assert not list(bulletins.rglob("*.partial")) and not list(bulletins.rglob("*.link"))


def test_a_waiting_writer_says_which_run_holds_the_edition(tmp_path):
    draft = DraftEdition(tmp_path, EDITION)
    messages: list[str] = []
    recorded: list[str] = []

    def second_writer() -> None:
        with locked([DraftEdition(tmp_path, EDITION)], lock_holder("second-run"), on_wait=messages.append):
            recorded.append(draft.lock_path.read_text(encoding="utf-8"))

    with locked([draft], lock_holder("first-run")):
        waiter = threading.Thread(target=second_writer)
        waiter.start()
        deadline = time.monotonic() + 10
        while not messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not recorded  # still waiting
    waiter.join(10)
    assert len(messages) == 1, messages
    assert messages[0].startswith(
        f"waiting for edition 2024-03: held by run first-run (pid {os.getpid()} on {socket.gethostname()}, since "
    )
    # Once the first writer is done, the second holds the lock and says so in the file;
    # when it is done too, the file names nobody.
    assert recorded and recorded[0].startswith("run second-run (pid ")
    assert draft.lock_path.read_text(encoding="utf-8") == ""


def test_a_home_copied_without_its_links_takes_new_editions(editions, tmp_path, monkeypatch):
    """A backup restored by a copy that followed the links has a real folder where the
    link was; the next write still swaps in, keeping that folder as the previous one."""
    monkeypatch.setenv("GOVPERF_CACHE", str(editions["root"] / "cache"))
    _write(tmp_path / "original", editions["warehouse"]["A"], "original")
    shutil.copytree(tmp_path / "original", tmp_path / "restored", symlinks=False)
    draft = DraftEdition(tmp_path / "restored", EDITION)
    assert draft.link.is_dir() and not draft.link.is_symlink()
    _write(tmp_path / "restored", editions["warehouse"]["B"], "after-restore")
    assert draft.link.is_symlink() and _files(draft.link) == editions["reference"]["B"]
    assert len(list(draft.versions.iterdir())) == 2
