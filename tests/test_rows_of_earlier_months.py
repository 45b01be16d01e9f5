"""A file of one period may carry rows dated in earlier months: cases received in
August sent again in September's file, one closed since, others with their channel
corrected (docs/ingest.md, "Periods").
That case is one case, counted by its latest state, and every month its rows are
dated in is scored again by the same `govperf run`: the marts equal a home that
computed everything at once. Whole pipelines: slow stage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.test_incremental_runs import _run
from tests.test_rerun_and_duplicates import all_marts

pytestmark = pytest.mark.slow


def _resend_in_september(inbox: Path) -> str:
    """Append to September's service transactions August's cases again: one closed on
    2 September, and every case received at a window (线下/窗口) now as online, which
    moves August's online rates and ranks (and so September's rank changes). Return
    the case number of the one closed in September."""
    august = inbox / "service_transactions" / "好差评明细_202508.csv"
    september = inbox / "service_transactions" / "好差评明细_202509.csv"
    rows = [
        line.split(",")
        for line in august.read_bytes().decode("gbk").splitlines()[1:]
        if '"' not in line and line.count(",") == 16  # 17 columns, 评价时间 among them
    ]
    closed = rows[0][:6] + ["2025-09-02 10:00:00"] + rows[0][7:]  # 办结时间
    online = [row[:4] + ["网办"] + row[5:] for row in rows[1:] if row[4] != "网办"]
    assert len(online) > 20
    lines = [",".join(row) for row in [closed, *online]]
    text = september.read_bytes().decode("gbk").rstrip("\r\n") + "\r\n" + "\r\n".join(lines) + "\r\n"
    september.write_bytes(text.encode("gbk"))
    return closed[0]


def test_a_case_sent_again_later_is_counted_once_and_its_months_are_scored_again(tmp_path: Path) -> None:
    inbox, held_back, home = tmp_path / "inbox", tmp_path / "held_back", tmp_path / "home"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=7,
        first_month="2025-07",
        last_month="2025-09",
        transactions=1500,
    )
    for path in sorted(inbox.rglob("*202509*")):
        target = held_back / path.relative_to(inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    _run(home, inbox)
    for path in sorted(held_back.rglob("*.*")):
        shutil.move(path, inbox / path.relative_to(held_back))
    case_id = _resend_in_september(inbox)

    said = _run(home, inbox)
    assert "running the full job for 2025-09..2025-09" in said
    assert "still out of date after that run" in said, said[-3000:]
    # September was scored before August had its new rows: both are scored again
    assert "dbt: redo 2025-08..2025-09 (2): 2025-08 because a later period's file carries rows dated in it" in said
    assert "nothing to do for 2025-07..2025-09: every step is up to date" in _run(home, inbox)

    warehouse = home / "warehouse" / "govperf.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        versions = con.execute(
            "select completed_month, file_hash from staging.stg_lake__service_transactions where case_id = ?",
            [case_id],
        ).fetchall()
        september_files = con.execute(
            "select file_hash from staging.stg_ingest__file_loads "
            "where source = 'service_transactions' and period = date '2025-09-01'"
        ).fetchall()
    assert [(str(month), file_hash) for month, file_hash in versions] == [("2025-09-01", september_files[0][0])]

    full = tmp_path / "full"
    shutil.copytree(home, full, symlinks=True)
    _run(full, inbox, "--force")
    incremental, everything = all_marts(warehouse), all_marts(full / "warehouse" / "govperf.duckdb")
    assert [table for table in everything if incremental[table] != everything[table]] == []
