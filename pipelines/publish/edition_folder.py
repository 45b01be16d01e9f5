"""Draft editions, each one folder that is swapped in whole.

A draft edition (its HTML, its department pages, its XLSX export) is written into
a fresh version folder, then made current by replacing a symbolic link with
os.replace, which is atomic: rename(2) cannot replace a folder that is not
empty, but it can replace a link. Readers go through the link and see either the
old edition or the new one, never a mix of two runs or a partial set.

    <bulletins>/monthly/2025-08                 -> .versions/2025-08/<version id>   (relative link)
    <bulletins>/monthly/.versions/2025-08/<version id>/bulletin_2025-08.html
                                                      bulletin_2025-08_departments/<department>.html
                                                      绩效排名_2025-08.xlsx
    <bulletins>/monthly/.versions/2025-08.lock  who writes the edition now (run id, pid, host)

Writers of one edition take its lock (flock) for the whole write, so they
serialise; a waiting writer is told which run holds it. The version id (time,
pid, a random part) names the folder only: nothing inside refers to it, so the
same marts still give the same bytes.

Clean-up rule, applied by the writer under the lock right after its swap: the
new current version and the one it replaced are kept; every other version folder
of the edition is removed. A reader that resolved the link (`current`) before the
swap keeps a complete edition until a further run has written the edition again;
folders left by a crashed writer are removed by the next writer of the edition,
since no live writer can own them while the lock is held.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from pipelines.publish.bulletin import collect_edition, drawing, is_ranked
from pipelines.publish.config import PERIOD_FOLDERS, BulletinConfig, Edition
from pipelines.publish.exports import write_export
from pipelines.warehouse import file_lock, read_warehouse

VERSIONS = ".versions"


class DraftEdition:
    """Where one edition's drafts live under `bulletins`, and how a new one is swapped in."""

    def __init__(self, bulletins: Path, edition: Edition) -> None:
        self.edition = edition
        self.kind_dir = Path(bulletins) / edition.folder
        self.link = self.kind_dir / edition.key
        self.versions = self.kind_dir / VERSIONS / edition.key
        self.lock_path = self.kind_dir / VERSIONS / f"{edition.key}.lock"
        self._unswapped: set[Path] = set()  # versions this writer started and has not swapped in

    @property
    def html(self) -> Path:
        """The edition's HTML through the link (exists once a version is in place)."""
        return self.link / f"{self.edition.stem}.html"

    def current(self) -> Path | None:
        """The version folder the link points to now. A reader that opens several files
        resolves this once and reads them all from it."""
        if not self.link.is_symlink():
            return None
        return self.link.resolve()

    def new_version(self) -> Path:
        """An empty, private version folder to write the edition into (hold the lock)."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = self.versions / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True)
        self._unswapped.add(folder)
        return folder

    def swap_in(self, version: Path) -> None:
        """Make the complete `version` current in one step, then clean up (hold the lock)."""
        _sync_tree(version)  # a crash of the machine must not leave a linked half folder either
        if self.link.is_dir() and not self.link.is_symlink():
            # A copy that followed the links (a restored backup) left a real folder here,
            # which no rename can replace: take it in as the previous version.
            os.rename(self.link, self.versions / f"{version.name}-copied")
            os.symlink(Path(VERSIONS) / self.edition.key / f"{version.name}-copied", self.link)
        previous = self.current()
        temporary = self.kind_dir / f".{self.edition.key}.{version.name}.link"
        temporary.unlink(missing_ok=True)
        os.symlink(version.relative_to(self.kind_dir), temporary)
        os.replace(temporary, self.link)
        _sync_dir(self.kind_dir)
        self._unswapped.discard(version)
        self._remove_all_but({version.name, previous.name if previous else None})
        self._remove_old_layout()

    def discard_unswapped(self) -> None:
        """Drop the versions this writer started but did not swap in (it failed)."""
        for version in self._unswapped:
            shutil.rmtree(version, ignore_errors=True)
        self._unswapped.clear()

    def _remove_all_but(self, keep: set[str | None]) -> None:
        for folder in sorted(self.versions.iterdir()):
            if folder.name in keep:
                continue
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.unlink(missing_ok=True)
        for link in self.kind_dir.glob(f".{self.edition.key}.*.link"):  # a crashed writer's
            link.unlink(missing_ok=True)

    def _remove_old_layout(self) -> None:
        """Drafts written before editions had folders (bulletin_<key>.html and its pages
        beside it) would otherwise stay on as a stale second copy."""
        (self.kind_dir / f"{self.edition.stem}.html").unlink(missing_ok=True)
        shutil.rmtree(self.kind_dir / f"{self.edition.stem}_departments", ignore_errors=True)


def drafts_in(bulletins: Path) -> list[DraftEdition]:
    """Every draft edition under `bulletins` that has a version in place, in key order."""
    found = []
    for folder in PERIOD_FOLDERS.values():
        kind_dir = Path(bulletins) / folder
        if not kind_dir.is_dir():
            continue
        for link in sorted(kind_dir.iterdir()):
            if link.is_symlink() and not link.name.startswith("."):  # not a writer's temporary link
                found.append(DraftEdition(bulletins, Edition.parse(link.name)))
    return found


def lock_holder(run_id: str) -> str:
    """What a writer records in the lock file, for whoever waits for it."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"run {run_id} (pid {os.getpid()} on {socket.gethostname()}, since {since})"


@contextlib.contextmanager
def locked(
    drafts: list[DraftEdition], holder: str, on_wait: Callable[[str], None] | None = None, timeout_s: float = 3600
) -> Iterator[None]:
    """Hold the lock of every edition in `drafts` while the block writes them; versions
    started and not swapped in are dropped on the way out. The locks are taken in one
    fixed order (kind, then key), so two runs over overlapping editions cannot deadlock."""
    with contextlib.ExitStack() as stack:
        for draft in sorted(drafts, key=lambda d: (d.edition.folder, d.edition.key)):
            key = draft.edition.key
            report = (lambda held, key=key: on_wait(f"waiting for edition {key}: held by {held}")) if on_wait else None
            stack.enter_context(
                file_lock(draft.lock_path, exclusive=True, timeout_s=timeout_s, holder=holder, on_wait=report)
            )
            stack.callback(draft.discard_unswapped)  # runs before its lock is released
        yield


def write_drafts(
    bulletins: Path,
    editions: list[Edition],
    holder: str,
    on_wait: Callable[[str], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
    on_write: Callable[[str], None] | None = None,
    warehouse: Path | None = None,
    config: BulletinConfig | None = None,
) -> list[tuple[DraftEdition, Path]]:
    """Write each ranked edition of `editions` (HTML, department pages, XLSX) whole into
    a new version folder and swap it in, under the editions' locks; return those written,
    each with the version folder it now points to.
    An edition with nothing ranked keeps what it had (`on_skip` is told); `on_write` is
    told of each edition as its writing starts, before anything is swapped in."""
    drafts = [DraftEdition(bulletins, edition) for edition in editions]
    with locked(drafts, holder, on_wait):
        written = []
        # Read everything under the warehouse lock, each edition handed to the drawing
        # processes as soon as it is read; the drawing goes on without the lock: it takes
        # seconds per edition, and dbt in another run waits for the lock.
        with drawing(len(drafts)) as draw, read_warehouse(warehouse) as con:
            for draft in drafts:
                if not is_ranked(con, draft.edition):
                    if on_skip is not None:
                        on_skip(f"{draft.edition.key}: nothing ranked, no edition")
                    continue
                version = draft.new_version()
                if on_write is not None:
                    on_write(f"edition {draft.edition.key}: writing {version.name}")
                draw(collect_edition(con, draft.edition, config), version)
                write_export(con, draft.edition, version)
                written.append((draft, version))
        for draft, version in written:
            draft.swap_in(version)
    return written


def _sync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _sync_dir(Path(folder))


def _sync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
