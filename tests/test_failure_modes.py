"""A corpus of distinct ways a departmental extract goes wrong, each with what
govperf must do: quarantine the row with a reason a person can act on, refuse the
file with a message naming it, or accept a messy but meaningful value. Every case
also checks that nothing is lost: rows read = accepted + quarantined.

One mode per entry; variants of a mode are not counted twice.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.test_ingest_landing import GOOD, HEADER, _land

# (mode, lines after the header (or the whole text when it starts with "!"), expected)
# expected: ("quarantine", reason fragment) | ("error", message fragment) | ("accept", None)
ROW_MODES = [
    ("unknown department", GOOD.replace("D001", "D999"), ("quarantine", "未知部门")),
    ("rating not one of the five levels", GOOD.replace(",满意,", ",很好,"), ("quarantine", "很好")),
    ("rating out of range as a number", GOOD.replace(",满意,", ",6,"), ("quarantine", "1-5")),
    (
        "completed before received",
        GOOD.replace("2025-03-04 10:00:00", "2025-03-01 10:00:00"),
        ("quarantine", "办结时间早于受理时间"),
    ),
    ("ragged row: too few fields", "SX9,D001,短行", ("quarantine", "列数")),
    ("ragged row: too many fields", GOOD + ",多余,字段", ("quarantine", "列数")),
    ("truncated last line without a newline", "!" + "{header}\r\n{good}\r\nSX9,D001,市政务", ("quarantine", "列数")),
    ("unknown channel", GOOD.replace(",网办,", ",邮寄,"), ("quarantine", "邮寄")),
    ("unparseable timestamp", GOOD.replace("2025-03-03 09:00:00", "上周三上午"), ("quarantine", "上周三上午")),
    ("negative time limit", GOOD.replace(",5,4,3,", ",-5,4,3,"), ("quarantine", "承诺时限为负数")),
    ("time limit not a number", GOOD.replace(",5,4,3,", ",五天,4,3,"), ("quarantine", "五天")),
    ("materials submitted above required", GOOD.replace(",5,4,3,", ",5,3,4,"), ("quarantine", "实交材料数")),
    ("missing required value", GOOD.replace("营业执照设立登记", ""), ("quarantine", "事项名称")),
    (
        "NUL byte inside a field",
        GOOD.replace("营业执照设立登记", "营业执照\x00设立登记"),
        ("quarantine", "NUL byte in column 事项名称"),
    ),
    ("embedded newline in a quoted comment", GOOD.replace(",满意,,", ',满意,"第一行\n第二行",'), ("accept", None)),
    ("huge free-text field", GOOD.replace(",满意,,", ",满意," + "很" * 200_000 + ","), ("accept", None)),
    ("formula text in a comment", GOOD.replace(",满意,,", ",满意,=cmd|' /C calc'!A0,"), ("accept", None)),
    ("HTML in a comment", GOOD.replace(",满意,,", ",满意,<script>alert(1)</script>,"), ("accept", None)),
    (
        "future date",
        GOOD.replace("2025-03-03 09:00:00", "2031-03-03 09:00:00").replace("2025-03-04", "2031-03-04"),
        ("quarantine", "未来日期"),
    ),
    ("full-width digits and a unit", GOOD.replace(",5,4,3,", ",５个工作日,４,３,"), ("accept", None)),
    ("Chinese date format", GOOD.replace("2025-03-03 09:00:00", "2025/3/3 09:00"), ("accept", None)),
    ("placeholder for a missing value", GOOD.replace(",4,3,", ",—,无,"), ("accept", None)),
]

FILE_MODES = [
    ("empty file", "", ("error", "empty")),
    ("header-only file", "!{header}\r\n", ("error", "")),
    ("missing required column", "!办件编号,部门编码\r\nSX1,D001\r\n", ("error", "missing columns")),
    ("not this extract at all", "!a,b,c\r\n1,2,3\r\n", ("error", "missing columns")),
]


def _text(lines: str) -> str:
    if lines.startswith("!"):
        return lines[1:].format(header=HEADER, good=GOOD)
    return f"{HEADER}\r\n{lines}\r\n"


@pytest.mark.parametrize(("mode", "lines", "expected"), ROW_MODES, ids=[m[0] for m in ROW_MODES])
def test_row_failure_modes(tmp_path: Path, mode: str, lines: str, expected: tuple[str, str | None]) -> None:
    landing, quarantine = _land(tmp_path, _text(lines), encoding="gb18030")
    assert landing.file_error is None, landing.file_error
    assert landing.rows_read == landing.rows_accepted + landing.rows_quarantined
    kind, fragment = expected
    if kind == "quarantine":
        assert quarantine, f"{mode}: nothing quarantined"
        line, raw_text, reason = quarantine[-1]
        assert fragment in reason, reason
        assert line >= 2 and raw_text
    else:
        assert quarantine == [], quarantine
        assert landing.rows_accepted >= 1


@pytest.mark.parametrize(("mode", "text", "expected"), FILE_MODES, ids=[m[0] for m in FILE_MODES])
def test_file_failure_modes(tmp_path: Path, mode: str, text: str, expected: tuple[str, str]) -> None:
    landing, _ = _land(tmp_path, _text(text) if text else "")
    assert landing.file_error is not None, f"{mode}: the file was not refused"
    assert expected[1] in landing.file_error and "好差评明细_202503.csv" in landing.file_error


def test_duplicate_rows_are_stopped_by_the_gate(tmp_path: Path) -> None:
    """The same case twice in one file lands (nothing is dropped silently), and the
    quality suite's uniqueness expectation (severity error) then blocks the month."""
    from pipelines.checks.suites import load_suites
    from pipelines.settings import QUALITY_DIR

    landing, _ = _land(tmp_path, f"{HEADER}\r\n{GOOD}\r\n{GOOD}\r\n")
    assert landing.rows_accepted == 2
    suite = load_suites(QUALITY_DIR)["service_transactions"]
    unique = [e for e in suite.expectations if e.type == "expect_column_values_to_be_unique"]
    assert unique and unique[0].severity == "error"
    ids = duckdb.sql(f"select case_id from '{tmp_path}/lake/service_transactions/*/*.parquet'").fetchall()
    assert ids == [("SX1",), ("SX1",)]


def test_the_corpus_has_at_least_25_distinct_modes() -> None:
    modes = (
        [m[0] for m in ROW_MODES] + [m[0] for m in FILE_MODES] + ["duplicate rows", "wrong encoding", "duplicate file"]
    )
    assert len(set(modes)) == len(modes) >= 25
