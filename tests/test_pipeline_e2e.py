"""End to end through Dagster: extract files → Parquet → dbt → marts → bulletin.

These run the real job on a persistent Dagster instance, real dbt and a real
DuckDB file, on a small generated city.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.runner import failure_messages, launch
from pipelines.settings import settings
from tests.conftest import FIRST_MONTH, LAST_MONTH, MART_TABLES, MONTHS, export_marts


def _bulletin_hashes() -> dict[str, str]:
    folder = settings().bulletins / "monthly"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.html"))}


def test_full_run_writes_the_contract_and_reruns_byte_identical(govperf_home: Path, monkeypatch, tmp_path):
    result = launch(FIRST_MONTH, LAST_MONTH)
    assert result.success, failure_messages(result)

    s = settings()
    con = duckdb.connect(str(s.duckdb_path), read_only=True)
    tables = {r[0] for r in con.sql("select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    assert set(MART_TABLES) <= tables
    for table in MART_TABLES:
        assert con.sql(f"select count(*) from marts.{table}").fetchall()[0][0] > 0, table
    # Every department with any scored indicator in a month is ranked that month.
    unranked = con.sql(
        """
        select v.period, v.department_id from marts.fct_indicator_values v
        left join marts.fct_rankings r using (period, period_type, department_id)
        where v.score is not null and r.department_id is null
        """
    ).fetchall()
    assert unranked == []
    ranked_per_month = dict(con.sql("select strftime(period, '%Y-%m'), count(*) from marts.fct_rankings group by 1").fetchall())
    assert sorted(ranked_per_month) == MONTHS
    assert min(ranked_per_month.values()) >= 60
    # The merged department is ranked up to its last month and not after.
    merged = con.sql("select department_id, valid_to from marts.dim_department where merged_into is not null").fetchall()
    assert merged, "the sample city has a merger"
    for department_id, valid_to in merged:
        after = con.sql(
            f"select count(*) from marts.fct_rankings where department_id = '{department_id}' and period > '{valid_to}'"
        ).fetchall()[0][0]
        assert after == 0
    # rows read = accepted + quarantined for every file
    unbalanced = con.sql(
        "select file_name from marts.fct_data_quality where rows_read <> rows_accepted + rows_quarantined"
    ).fetchall()
    assert unbalanced == []
    con.close()
    bulletins = _bulletin_hashes()
    assert sorted(bulletins) == [f"bulletin_{m}.html" for m in MONTHS]
    first_marts = export_marts(s.duckdb_path)

    # Same inputs in a fresh home: byte-identical marts and bulletins.
    second_home = tmp_path / "second_home"
    monkeypatch.setenv("GOVPERF_HOME", str(second_home))
    monkeypatch.setenv("DAGSTER_HOME", str(second_home / "dagster_home"))
    result = launch(FIRST_MONTH, LAST_MONTH)
    assert result.success, failure_messages(result)
    assert export_marts(settings().duckdb_path) == first_marts
    assert _bulletin_hashes() == bulletins


def test_failed_gate_stops_the_bulletin_and_later_scoring(govperf_home: Path):
    inbox = Path(os.environ["GOVPERF_INBOX"])
    month = "2025-08"
    target = next((inbox / "service_transactions").glob(f"*{month.replace('-', '')}.csv"))
    # Plant bad data: a fifth of the ratings become an unknown level.
    lines = target.read_bytes().decode("gbk").splitlines(keepends=True)
    for i in range(1, len(lines), 5):
        lines[i] = lines[i].replace(",满意,", ",很不好,", 1).replace(",非常满意,", ",很不好,", 1)
    target.write_bytes("".join(lines).encode("gbk"))

    result = launch(month)
    assert not result.success
    messages = failure_messages(result)
    assert any("quarantine_within_limit" in m for m in messages), messages
    assert not (settings().bulletins / "monthly" / f"bulletin_{month}.html").exists()

    # A later scoring-and-bulletin run for the month refuses, and says why.
    later = launch(month, job="scoring")
    assert not later.success
    reasons = " ".join(failure_messages(later))
    assert "Scoring refused" in reasons and "quarantine_within_limit" in reasons
    assert not (settings().bulletins / "monthly" / f"bulletin_{month}.html").exists()


def test_reloading_the_same_files_changes_nothing(govperf_home: Path):
    assert launch(FIRST_MONTH, job="ingest").success
    lake = settings().lake
    before = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "reference" not in p.parts}
    assert launch(FIRST_MONTH, job="ingest").success
    after = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "reference" not in p.parts}
    assert before == after
    archived = list(settings().archive.rglob("*.*"))
    assert len(archived) == len({p.name for p in archived})
