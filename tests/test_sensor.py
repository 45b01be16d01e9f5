"""The new-extract sensor asks for runs by content: a file whose bytes have
landed starts nothing, however its modification time moved; a new file or new
bytes start one ingest run for their month.

Real sensor evaluations on a real instance in a temporary DAGSTER_HOME, over a
lake that a real ingest run of a tiny city landed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from pipelines import runner
from pipelines.definitions import defs
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.conftest import use_home

pytestmark = pytest.mark.slow  # one real ingest run for the module

TRANSACTIONS = "service_transactions/好差评明细_202508.csv"


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(home, inbox): a tiny city's two months, landed by a real ingest run."""
    root = tmp_path_factory.mktemp("sensor")
    inbox, home = root / "inbox", root / "home"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month="2025-07",
        last_month="2025-08",
        transactions=2000,
    )
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, inbox)
        runner.launch("2025-07", "2025-08", job="ingest")
    assert list((home / "lake" / "file_loads").glob("service_transactions/2025-0[78]/*.parquet"))
    return home, inbox


@pytest.fixture
def inbox(landed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the landed inbox (same bytes, same times) over the landed lake,
    with a fresh DAGSTER_HOME of its own."""
    home, landed_inbox = landed
    copy = tmp_path / "inbox"
    shutil.copytree(landed_inbox, copy)  # copy2: modification times kept
    use_home(monkeypatch, home, copy)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return copy


def _tick(cursor: str | None = None) -> dg.SensorExecutionData:
    with runner.instance() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
        return defs.resolve_sensor_def("new_extract_sensor").evaluate_tick(context)


def test_sensor_over_a_landed_inbox_requests_nothing(inbox: Path):
    first = _tick()  # the sensor just turned on: no cursor yet
    assert list(first.run_requests) == []
    assert list(_tick(first.cursor).run_requests) == []


def test_a_new_file_requests_one_run_for_its_month(inbox: Path):
    cursor = _tick().cursor
    august = (inbox / TRANSACTIONS).read_bytes()
    # August's bytes under September's name: landed for August, new for September.
    (inbox / TRANSACTIONS.replace("202508", "202509")).write_bytes(august)
    result = _tick(cursor)
    assert [r.partition_key for r in result.run_requests] == ["2025-09-01"]
    assert "好差评明细_202509.csv" in result.run_requests[0].tags["govperf/new_files"]
    assert list(_tick(result.cursor).run_requests) == []  # asked once, not at every tick


def test_bytes_put_back_before_they_landed_are_asked_for_again_under_a_new_key(inbox: Path):
    """Dagster launches a run key once, ever: the same bytes asked for a second time
    under the same key would be skipped without a word."""
    cursor = _tick().cursor
    august = (inbox / TRANSACTIONS).read_bytes()
    new_file = inbox / TRANSACTIONS.replace("202508", "202509")
    new_file.write_bytes(august)
    first = _tick(cursor)
    new_file.unlink()  # taken out before its run landed it
    gone = _tick(first.cursor)
    new_file.write_bytes(august)  # and put back
    again = _tick(gone.cursor)
    keys = [r.run_key for r in [*first.run_requests, *again.run_requests]]
    assert len(keys) == 2 and keys[0] != keys[1], keys


def test_changed_bytes_request_one_run(inbox: Path):
    cursor = _tick().cursor
    path = inbox / TRANSACTIONS
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines + lines[-1:]))  # a department resends with one row more
    result = _tick(cursor)
    assert [r.partition_key for r in result.run_requests] == ["2025-08-01"]


def test_a_touched_file_requests_nothing(inbox: Path):
    cursor = _tick().cursor
    path = inbox / TRANSACTIONS
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 3_600 * 10**9))  # same bytes, an hour later
    path.write_bytes(path.read_bytes())  # rewritten whole: a new mtime again
    assert list(_tick(cursor).run_requests) == []
    assert list(_tick().run_requests) == []  # and with no cursor at all
