"""Files built to exhaust ingest's memory or slip a row past it (issue 11, item 6).

Each hostile file is generated here, in chunks, and the heavy ones are landed in
a child process whose peak RSS is read from the kernel (os.wait4). The bound is
generous, 1 GiB, about twice what landing a ten-line file costs (jieba's
dictionary and DuckDB): it shows that memory does not grow with the file, which
on main reached 13 times the file.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.land import land_file
from pipelines.ingest.mapping import load_mapping
from pipelines.reference import ConfigError
from pipelines.sample import hostile
from tests.conftest import SHARED_CACHE
from tests.test_ingest_landing import MAPPINGS, REGISTRY

GIB = 1 << 30
MIB = 1 << 20
NAME = "好差评明细_202503"


def _inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox" / hostile.SOURCE


def _quarantine(tmp_path: Path) -> list[tuple]:
    return duckdb.sql(
        f"select line, raw_text, reason from '{tmp_path}/lake/quarantine/*/*/*.parquet' order by line"
    ).fetchall()


def _accepted(tmp_path: Path) -> list[tuple]:
    return duckdb.sql(
        f"select case_id, length(comment) from '{tmp_path}/lake/{hostile.SOURCE}/*/*.parquet' order by case_id"
    ).fetchall()


def _land_here(tmp_path: Path, path: Path, **limits):
    mapping = MAPPINGS[hostile.SOURCE]
    if path.suffix == ".xlsx":
        mapping = mapping.model_copy(update={"format": "xlsx"})
    if limits:
        mapping = mapping.model_copy(update={"limits": mapping.limits.model_copy(update=limits)})
    return land_file(path, f"{hostile.SOURCE}/{path.name}", mapping, REGISTRY, tmp_path / "lake", tmp_path / "archive")


@pytest.mark.slow
def test_govperf_run_over_a_month_holding_a_300_mb_line_stays_under_1_gib_and_quarantines_that_row(
    tmp_path: Path,
) -> None:
    path = hostile.long_line_csv(_inbox(tmp_path) / f"{NAME}.csv", 300 * MIB)
    home = tmp_path / "home"
    env = dict(
        os.environ,
        GOVPERF_HOME=str(home),
        GOVPERF_INBOX=str(tmp_path / "inbox"),
        GOVPERF_CACHE=str(SHARED_CACHE),
        DAGSTER_HOME=str(home / "dagster_home"),
    )
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
        env.pop(derived, None)
    command = [sys.executable, "-m", "pipelines.cli", "run", "--job", "ingest", "--from", "2025-03", "--to", "2025-03"]
    with (tmp_path / "run.log").open("w+") as log:
        # `govperf run` executes in this one process (dbt is not started by an ingest job).
        _code, peak = hostile.run_measured(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.seek(0)
        output = log.read()
    assert peak < GIB, f"peak RSS {peak / MIB:.0f} MiB for a {path.stat().st_size / MIB:.0f} MiB file"
    # The run stops at the quarantine share (1 row in 3), not at a lost row.
    assert "quarantine_within_limit failed" in output and "rows_balanced" not in output, output[-2000:]
    loads = duckdb.sql(
        f"select rows_read, rows_accepted, rows_quarantined from '{home}/lake/file_loads/{hostile.SOURCE}/*/*.parquet'"
    ).fetchall()
    assert loads == [(3, 2, 1)]
    [(line, raw_text, reason)] = _quarantine(home)
    assert line == 3 and raw_text.startswith("SX2,D001,")
    assert "line 3, column 12 (评价内容)" in reason and "314,572,800 bytes" in reason, reason


@pytest.mark.slow
def test_a_field_one_byte_over_8_mib_is_quarantined_and_a_million_character_comment_is_kept(tmp_path: Path) -> None:
    path = hostile.field_limit_csv(_inbox(tmp_path) / f"{NAME}.csv", 8 * MIB, kept_chars=1_000_000)
    landing, peak = hostile.land_in_child(path, tmp_path)
    assert peak < GIB, f"peak RSS {peak / MIB:.0f} MiB"
    assert (landing["rows_read"], landing["rows_accepted"], landing["rows_quarantined"]) == (4, 3, 1)
    [(line, _raw, reason)] = _quarantine(tmp_path)
    assert line == 3 and "column 12 (评价内容) holds 8,388,609 bytes" in reason, reason
    assert _accepted(tmp_path) == [("SX1", None), ("SX3", 1_000_000), ("SX4", None)]


@pytest.mark.slow
def test_a_300_mb_line_of_short_fields_is_quarantined_in_bounded_memory(tmp_path: Path) -> None:
    """No field is over its limit, but the record is: held whole, it cost several times
    the line (the scan's carry-over, the decoded copy, DuckDB's line buffer)."""
    path = hostile.many_fields_line_csv(_inbox(tmp_path) / f"{NAME}.csv", 300 * MIB)
    landing, peak = hostile.land_in_child(path, tmp_path)
    assert peak < GIB, f"peak RSS {peak / MIB:.0f} MiB for a {path.stat().st_size / MIB:.0f} MiB file"
    assert (landing["rows_read"], landing["rows_accepted"], landing["rows_quarantined"]) == (3, 2, 1)
    [(line, raw_text, reason)] = _quarantine(tmp_path)
    assert line == 3 and raw_text.startswith("SX2,a,a"), raw_text[:40]
    assert reason.startswith("记录过长 (record too long): line 3 holds 314,572,") and "max_record_bytes" in reason


def test_a_record_over_its_limit_is_quarantined_and_the_rows_around_it_kept(tmp_path: Path) -> None:
    rows = [hostile.row("SX1"), "SX2" + ",a" * 3000, hostile.row("SX3", "x" * 900), hostile.row("SX4")]
    path = _inbox(tmp_path) / f"{NAME}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(("\r\n".join([hostile.HEADER, *rows]) + "\r\n").encode())
    landing = _land_here(tmp_path, path, max_field_bytes=1024, max_record_bytes=4096)
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (4, 3, 1)
    [(line, _raw, reason)] = _quarantine(tmp_path)
    assert line == 3 and reason.startswith("记录过长 (record too long): line 3 holds 6,005 bytes"), (
        reason
    )  # CRLF included
    assert "the limit is 4,096 (limits.max_record_bytes)" in reason


@pytest.mark.slow
def test_an_xlsx_decompression_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = hostile.xlsx_bomb(_inbox(tmp_path) / f"{NAME}.xlsx", rows=800_000)
    assert path.stat().st_size < 20 * MIB  # about 590 MB of sheet XML
    landing, peak = hostile.land_in_child(path, tmp_path)
    assert peak < GIB, f"peak RSS {peak / MIB:.0f} MiB"
    error = landing["file_error"]
    assert error and f"{NAME}.xlsx" in error and "limits.max_workbook_bytes = 134,217,728" in error, error
    assert "declared by the zip" in error
    assert landing["rows_read"] == landing["rows_quarantined"] == 1 and landing["rows_accepted"] == 0


# Where a sheet sits is the workbook's to say (its relationships), not a fixed folder.
@pytest.mark.parametrize("sheet_part", ["xl/worksheets/sheet1.xml", "xl/data/s.xml", "xl/worksheets/sub/s.xml"])
def test_a_workbook_over_the_row_limit_is_refused_naming_the_limit_and_the_count(tmp_path: Path, sheet_part) -> None:
    path = hostile.xlsx_bomb(_inbox(tmp_path) / f"{NAME}.xlsx", rows=300, sheet_part=sheet_part)
    landing = _land_here(tmp_path, path, max_workbook_rows=100)
    assert landing.file_error is not None
    assert f"{NAME}.xlsx: the workbook holds more than 100 rows" in landing.file_error, landing.file_error
    assert "limits.max_workbook_rows" in landing.file_error
    # Within the limits the same workbook lands whole.
    again = _land_here(tmp_path / "again", path)
    assert again.file_error is None and (again.rows_read, again.rows_accepted) == (300, 300)


def test_nul_bytes_quarantine_their_row_naming_the_column(tmp_path: Path) -> None:
    path = hostile.nul_csv(_inbox(tmp_path) / f"{NAME}.csv")
    landing = _land_here(tmp_path, path)
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (2, 1, 1)
    [(line, _raw, reason)] = _quarantine(tmp_path)
    assert line == 3 and "NUL byte in column 评价内容" in reason
    stored = duckdb.sql(f"select comment from '{tmp_path}/lake/{hostile.SOURCE}/*/*.parquet'").fetchall()
    assert not any("\x00" in (c or "") for (c,) in stored)


def test_oversized_quoted_fields_across_lines_and_chunks_keep_every_other_line_number(tmp_path: Path) -> None:
    """The scan follows quotes: a quoted field over the limit that spans lines
    quarantines its own record only, and the records after it keep their lines."""
    over = '"' + ("很长的评价,含逗号\n和换行" * 200) + '"'  # ~4 KB, 200 newlines, over a 1 KiB limit
    under = '"他说""好""，\n第二行"'
    rows = [
        hostile.row("SX1"),
        hostile.row("SX2", over),  # lines 3-203
        hostile.row("SX3", under),  # lines 204-205
        hostile.row("SX4", "x" * 1500),  # line 206: an unquoted field over the limit
        hostile.row("SX5"),  # line 207
    ]
    path = _inbox(tmp_path) / f"{NAME}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(("\r\n".join([hostile.HEADER, *rows]) + "\r\n").encode())
    landing = _land_here(tmp_path, path, max_field_bytes=1024)
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (5, 3, 2)
    quarantined = {line: reason for line, _raw, reason in _quarantine(tmp_path)}
    assert sorted(quarantined) == [3, 206]
    assert "line 3, column 12 (评价内容)" in quarantined[3] and "line 206, column 12" in quarantined[206]
    lines = duckdb.sql(
        f"select case_id, _line from '{tmp_path}/lake/{hostile.SOURCE}/*/*.parquet' order by _line"
    ).fetchall()
    assert lines == [("SX1", 2), ("SX3", 204), ("SX5", 207)]


def test_read_limits_are_validated_when_the_mapping_loads(tmp_path: Path) -> None:
    from pipelines.ingest.mapping import ReadLimits

    assert ReadLimits().max_field_bytes == 8 * MIB
    source = Path(__file__).resolve().parents[1] / "sources" / "mappings"
    text = next(p for p in sorted(source.glob("*.yaml")) if "service_transactions" in p.read_text()).read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\nlimits:\n  max_field_bytes: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_field_bytes"):
        load_mapping(bad)
    bad.write_text(text + "\nlimits:\n  max_field_bytes: 4096\n  max_record_bytes: 2048\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="a record holds its fields"):
        load_mapping(bad)
    good = tmp_path / "good.yaml"
    good.write_text(text + "\nlimits:\n  max_workbook_rows: 5000\n", encoding="utf-8")
    assert load_mapping(good).limits == ReadLimits(max_workbook_rows=5000)


def test_the_chunked_scan_finds_the_records_that_python_csv_finds(tmp_path: Path, monkeypatch) -> None:
    """Random CSV text with quotes, doubled quotes, stray quotes, commas, blank
    lines and newlines inside fields, scanned in chunks of a few bytes so that
    every state crosses a chunk's end: each record starts where csv.reader says."""
    import csv
    import random
    import re

    from pipelines.ingest import csv_scan

    monkeypatch.setattr(csv_scan, "CHUNK_BYTES", 7)
    pieces = ["a", "很", ",", ",", "\n", "\r\n", '"', '""', " ", "x1"]
    notes = re.compile(r"^\s*注[:：]")
    for seed in range(300):
        rng = random.Random(seed)
        text = "h1,h2\n" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        path = tmp_path / f"{seed}.csv"
        path.write_bytes(text.encode())
        expected, previous_end = [], 0
        rows = csv.reader(io.StringIO(text, newline=""))
        for row in rows:
            start, previous_end = previous_end + 1, rows.line_num
            if start > 1 and any(cell.strip() for cell in row):
                expected.append(start)
        scan = csv_scan.scan_csv(path, 1, notes, max_field_bytes=1 << 20)
        found = sorted([*scan.record_lines, *scan.notes_lines])
        assert found == expected, (seed, text)
