"""Resubmissions, deadlines and volumes: which rows count for a (department,
month) slice, who delivered late or not at all, and whose volume is unusual.

The first tests land real files with the real mapping and registry; the last
runs the whole pipeline through Dagster twice, before and after a correction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

import duckdb
import pytest

from pipelines.checks.suites import Suite, Volume
from pipelines.ingest import submissions
from pipelines.ingest.assets import ingest_month, volume_outcomes
from pipelines.ingest.mapping import load_mappings
from pipelines.reference import load_departments
from pipelines.runner import failure_messages, launch
from pipelines.settings import PROJECT_ROOT, settings

MAPPING = load_mappings(PROJECT_ROOT / "sources" / "mappings")["service_transactions"]
REGISTRY = load_departments(PROJECT_ROOT / "sources" / "reference")
HEADER = "办件编号,部门编码,部门名称,事项名称,办理渠道,受理时间,办结时间,承诺时限,应交材料数,实交材料数,评价等级,评价内容,是否整改,整改时间,是否申诉,申诉结果"
SUITE = Suite.model_validate(
    {
        "source": "service_transactions",
        "completeness": True,
        "volume": {"lookback": 3, "min_rows": 5},
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "case_id"}, "severity": "error"}
        ],
    }
)


def _row(case: str, department: str, rating: str = "满意", month: str = "2025-03") -> str:
    return f"{case},{department},,营业执照设立登记,网办,{month}-03 09:00:00,{month}-04 10:00:00,5,4,3,{rating},,,,,"


def _deliver(inbox: Path, name: str, rows: list[str], when: dt.datetime) -> Path:
    path = inbox / "service_transactions" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("gbk"))
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def _ingest(
    tmp_path: Path, month: dt.date = dt.date(2025, 3, 1), today: dt.date = dt.date(2026, 1, 1), mapping=MAPPING
):
    return ingest_month(
        mapping, month, REGISTRY, tmp_path / "inbox", tmp_path / "lake", tmp_path / "archive", SUITE, today
    )


def _register(tmp_path: Path, month: dt.date = dt.date(2025, 3, 1)) -> list[tuple]:
    rows = submissions.read_register(tmp_path / "lake", "service_transactions", month)
    return sorted(
        (
            r["file_name"].split("/")[-1],
            r["department_id"],
            r["rows"],
            r["status"],
            (r["superseded_by_file"] or "").split("/")[-1],
        )
        for r in rows
    )


def test_a_resubmission_replaces_exactly_the_department_slices_it_covers(tmp_path):
    inbox = tmp_path / "inbox"
    _deliver(
        inbox,
        "好差评明细_202503.csv",
        [_row("A1", "D001"), _row("A2", "D001"), _row("B1", "D002")],
        dt.datetime(2025, 4, 3, 9),
    )
    _ingest(tmp_path)
    assert _register(tmp_path) == [
        ("好差评明细_202503.csv", "D001", 2, "current", ""),
        ("好差评明细_202503.csv", "D002", 1, "current", ""),
    ]
    # D001 sends a corrected file two days later: it covers D001 only.
    _deliver(inbox, "好差评明细_202503_更正.csv", [_row("A1", "D001", "非常不满意")], dt.datetime(2025, 4, 5, 9))
    _, outcomes = _ingest(tmp_path)
    assert _register(tmp_path) == [
        ("好差评明细_202503.csv", "D001", 2, "superseded", "好差评明细_202503_更正.csv"),
        ("好差评明细_202503.csv", "D002", 1, "current", ""),
        ("好差评明细_202503_更正.csv", "D001", 1, "current", ""),
    ]
    # Delivering the same bytes again changes nothing.
    before = (tmp_path / "lake").rglob("*.parquet")
    snapshot = {p: p.read_bytes() for p in before}
    _ingest(tmp_path)
    assert {p: p.read_bytes() for p in snapshot} == snapshot
    # A correction delivered on the 5th does not make the first delivery (the 3rd) late.
    completeness = next(o for o in outcomes if o.check_name == "departments_reported")
    assert "逾期" not in completeness.details


def test_a_resubmission_replaces_a_departments_month_of_a_file_spanning_months(tmp_path):
    """A slice is (department, month of the rows' own dates): March's file carries
    D001's February and March cases; a correction holding only D001's March cases
    replaces those, and the February ones stay current."""
    inbox = tmp_path / "inbox"
    _deliver(
        inbox,
        "好差评明细_202503.csv",
        [_row("F1", "D001", month="2025-02"), _row("M1", "D001"), _row("M2", "D001")],
        dt.datetime(2025, 4, 3, 9),
    )
    _deliver(inbox, "好差评明细_202503_更正.csv", [_row("M1", "D001", "非常不满意")], dt.datetime(2025, 4, 5, 9))
    _ingest(tmp_path)
    register = submissions.read_register(tmp_path / "lake", "service_transactions", dt.date(2025, 3, 1))
    assert sorted((r["file_name"].split("/")[-1], str(r["month"]), r["rows"], r["status"]) for r in register) == [
        ("好差评明细_202503.csv", "2025-02-01", 1, "current"),
        ("好差评明细_202503.csv", "2025-03-01", 2, "superseded"),
        ("好差评明细_202503_更正.csv", "2025-03-01", 1, "current"),
    ]


def test_an_overwritten_or_withdrawn_file_moves_to_history_and_nothing_is_deleted(tmp_path):
    inbox = tmp_path / "inbox"
    path = _deliver(inbox, "好差评明细_202503.csv", [_row("A1", "D001"), _row("B1", "D002")], dt.datetime(2025, 4, 3))
    _ingest(tmp_path)
    first_hash = submissions.read_register(tmp_path / "lake", "service_transactions", dt.date(2025, 3, 1))[0][
        "file_hash"
    ]
    # Overwritten under the same name: the old landing is history, superseded by the new bytes.
    _deliver(
        inbox, "好差评明细_202503.csv", [_row("A1", "D001", "不满意"), _row("B1", "D002")], dt.datetime(2025, 4, 4)
    )
    _ingest(tmp_path)
    register = _register(tmp_path)
    assert [r[3] for r in register].count("superseded") == 2
    history = submissions.history_paths(tmp_path / "lake", "service_transactions", dt.date(2025, 3, 1), first_hash)
    assert history["accepted"].exists() and history["file_load"].exists()
    assert duckdb.sql(f"select count(*) from '{history['accepted']}'").fetchall()[0][0] == 2
    # Taken out of the inbox altogether: withdrawn, rows kept.
    latest = path.read_bytes()
    path.unlink()
    _ingest(tmp_path)
    assert {r[3] for r in _register(tmp_path)} == {"withdrawn"}
    # Delivered again: current once more, and not also kept as history.
    path.write_bytes(latest)
    _ingest(tmp_path)
    assert sorted(r[3] for r in _register(tmp_path)) == ["current", "current", "superseded", "superseded"]


def test_late_and_missing_departments_are_listed_against_the_deadline(tmp_path):
    inbox = tmp_path / "inbox"
    # Deadline for March: 5 April. D001 on time, D002 three days late, the others missing.
    _deliver(inbox, "好差评明细_202503_a.csv", [_row("A1", "D001")], dt.datetime(2025, 4, 5, 17))
    _deliver(inbox, "好差评明细_202503_b.csv", [_row("B1", "D002")], dt.datetime(2025, 4, 8, 9))
    _, outcomes = _ingest(tmp_path)
    completeness = next(o for o in outcomes if o.check_name == "departments_reported")
    assert not completeness.passed and completeness.severity == "warning"
    assert "截止 2025-04-05" in completeness.details
    assert "逾期3天 D002" in completeness.details and "D001" not in completeness.details.split("逾期报送")[1]
    active = submissions.active_departments(REGISTRY, dt.date(2025, 3, 1))
    assert f"{len(active) - 2} 个部门未报送" in completeness.details
    # Before the deadline a department that has not delivered is not yet missing.
    _, early = _ingest(tmp_path, today=dt.date(2025, 4, 2))
    early_check = next(o for o in early if o.check_name == "departments_reported")
    assert "尚未报送" in early_check.details and "个部门未报送" not in early_check.details


def test_volume_is_judged_against_the_departments_own_history(tmp_path):
    inbox = tmp_path / "inbox"
    months = [dt.date(2025, m, 1) for m in (1, 2, 3, 4)]
    volumes = {"D001": [40, 44, 38, 9], "D002": [30, 31, 29, 30]}  # D001 drops to a quarter in April
    for month, index in zip(months, range(4)):
        rows = [
            _row(f"{d}-{month:%m}-{i}", d, month=f"{month:%Y-%m}")
            for d, counts in volumes.items()
            for i in range(counts[index])
        ]
        _deliver(inbox, f"好差评明细_{month:%Y%m}.csv", rows, dt.datetime(month.year, month.month + 1, 2))
        _ingest(tmp_path, month)
    outcomes = volume_outcomes(MAPPING, months, tmp_path / "lake", SUITE, REGISTRY)
    april = outcomes[-1]
    assert [o.passed for o in outcomes[:-1]] == [True, True, True]  # too little history to judge, then fine
    assert not april.passed and "D001 9 行" in april.details and "D002" not in april.details


def test_a_department_merged_into_another_is_not_flagged_after_it_left_office(tmp_path):
    """市粮食和物资储备局 (D031) merged into the 发改委 (D003) on 2025-08-31 (departments.yaml):
    from September it sends nothing and D003 carries its work. Neither is a volume
    anomaly; a department still in office that stops sending is."""
    merged, absorbing = "D031", "D003"
    assert next(d for d in REGISTRY.departments if d.id == merged).merged_into == absorbing
    inbox = tmp_path / "inbox"
    months = [dt.date(2025, m, 1) for m in (5, 6, 7, 8, 9)]
    volumes = {merged: [30, 32, 28, 30, 0], absorbing: [30, 29, 31, 30, 61], "D002": [30, 31, 29, 30, 0]}
    for index, month in enumerate(months):
        rows = [
            _row(f"{d}-{month:%m}-{i}", d, month=f"{month:%Y-%m}")
            for d, counts in volumes.items()
            for i in range(counts[index])
        ]
        _deliver(inbox, f"好差评明细_{month:%Y%m}.csv", rows, dt.datetime(month.year, month.month + 1, 2))
        _ingest(tmp_path, month)
    september = volume_outcomes(MAPPING, months, tmp_path / "lake", SUITE, REGISTRY)[-1]
    assert not september.passed
    assert "D002 0 行" in september.details  # in office, and silent: flagged
    assert merged not in september.details and absorbing not in september.details, september.details


def test_a_chain_of_mergers_counts_every_absorbed_departments_history():
    """A merged into B, then B into C: from then on C carries both, and is no surge."""
    registry = REGISTRY.model_validate(
        {
            "departments": [
                {
                    "id": "A",
                    "name": "甲",
                    "peer_group": "窗口服务类",
                    "valid_from": "2020-01-01",
                    "valid_to": "2025-02-28",
                    "merged_into": "B",
                },
                {
                    "id": "B",
                    "name": "乙",
                    "peer_group": "窗口服务类",
                    "valid_from": "2020-01-01",
                    "valid_to": "2025-04-30",
                    "merged_into": "C",
                },
                {"id": "C", "name": "丙", "peer_group": "窗口服务类", "valid_from": "2020-01-01"},
            ]
        }
    )
    # A is the big one: C's own rows and B's alone would make C's May look like a 6× surge.
    rows = {
        **{month: {"A": 100, "B": 10, "C": 10} for month in ("2024-11", "2024-12", "2025-01", "2025-02")},
        "2025-03": {"B": 110, "C": 10},
        "2025-04": {"B": 110, "C": 10},
        "2025-05": {"C": 120},
    }
    history = {
        dt.date.fromisoformat(f"{month}-01"): [
            {"department_id": d, "rows": n, "status": "current"} for d, n in counts.items()
        ]
        for month, counts in rows.items()
    }
    may = submissions.volume_outcome(MAPPING, dt.date(2025, 5, 1), history, 6, 0.5, 2.0, 20, "warning", registry)
    assert may.passed, may.details


@pytest.mark.parametrize(
    "mapping, names",
    [
        # The names carry the month.
        (MAPPING, ("好差评明细_202503.csv", "好差评明细_202503 (1).csv")),
        # A fixed period: the names carry none (as the NBS and ASEM extracts).
        (MAPPING.model_copy(update={"period": "2025-03"}), ("好差评明细_一.csv", "好差评明细_二.csv")),
    ],
    ids=["month_in_name", "fixed_period"],
)
def test_the_same_bytes_under_two_names_are_one_submission(tmp_path, mapping, names):
    """A department sends its extract twice: one submission, its rows counted
    once, and a warning that names both files."""
    inbox = tmp_path / "inbox"
    first, second = names
    rows = [_row("A1", "D001"), _row("A2", "D001"), _row("B1", "D002")]
    _deliver(inbox, first, rows, dt.datetime(2025, 4, 3, 9))
    _deliver(inbox, second, rows, dt.datetime(2025, 4, 3, 10))
    landings, outcomes = _ingest(tmp_path, mapping=mapping)
    assert _register(tmp_path) == [(first, "D001", 2, "current", ""), (first, "D002", 1, "current", "")]
    assert len(landings) == 1
    duplicate = [o for o in outcomes if o.check_name == "duplicate_delivery"]
    assert len(duplicate) == 1 and duplicate[0].severity == "warning" and not duplicate[0].passed
    assert first in duplicate[0].details and second in duplicate[0].details
    # Each file check once for the content, not once per name.
    assert sorted(o.check_name for o in outcomes if o.file_hash and o.check_name != "duplicate_delivery") == [
        "file_readable",
        "quarantine_within_limit",
        "rows_balanced",
    ]
    # Landed again, the same: the duplicate stays a duplicate.
    _, again = _ingest(tmp_path, mapping=mapping)
    assert _register(tmp_path) == [(first, "D001", 2, "current", ""), (first, "D002", 1, "current", "")]
    assert [o.details for o in again if o.check_name == "duplicate_delivery"] == [duplicate[0].details]


@pytest.mark.parametrize("taken_away", ["withdrawn", "overwritten"])
def test_restoring_a_files_original_bytes_keeps_its_first_delivery_time(tmp_path, taken_away):
    """The delivery time of some bytes is the first time they were delivered: put
    back months later, they are not a new, late delivery."""
    inbox = tmp_path / "inbox"
    name = "好差评明细_202503.csv"
    original = [_row("A1", "D001"), _row("B1", "D002")]
    on_time = dt.datetime(2025, 4, 3, 9)  # the deadline for March is 5 April
    path = _deliver(inbox, name, original, on_time)
    _ingest(tmp_path)
    if taken_away == "withdrawn":
        path.unlink()
    else:
        _deliver(inbox, name, [_row("A1", "D001", "不满意"), _row("B1", "D002")], dt.datetime(2025, 4, 4, 9))
    _ingest(tmp_path)
    _deliver(inbox, name, original, dt.datetime(2025, 12, 1, 9))  # the same bytes, restored
    _, outcomes = _ingest(tmp_path)
    current = [
        r
        for r in submissions.read_register(tmp_path / "lake", "service_transactions", dt.date(2025, 3, 1))
        if r["status"] == "current"
    ]
    assert sorted(r["department_id"] for r in current) == ["D001", "D002"]
    assert {r["submitted_at"] for r in current} == {on_time}
    completeness = next(o for o in outcomes if o.check_name == "departments_reported")
    assert "逾期" not in completeness.details


def test_volume_settings_are_validated():
    with pytest.raises(ValueError):
        Volume(lookback=1)


@pytest.mark.slow
def test_a_corrected_resubmission_flows_through_the_whole_pipeline(govperf_home):
    """Run August; a department resubmits its August transactions with different
    ratings; run again. Its rows are replaced, everyone else's are untouched, the
    old rows stay in history, and the uniqueness expectation (case ids repeat
    across the two files) still holds on the current rows."""
    first = launch("2025-08", "2025-08")
    assert first.success, failure_messages(first)
    db = settings().duckdb_path

    def values() -> dict[tuple[str, str], float]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return {
                (d, i): v
                for d, i, v in con.sql(
                    "select department_id, indicator_id, raw_value from marts.fct_indicator_values "
                    "where period = '2025-08-01' and period_type = 'month'"
                ).fetchall()
            }
        finally:
            con.close()

    before = values()
    inbox = settings().inbox
    original = inbox / "service_transactions" / "好差评明细_202508.csv"
    rows = list(csv.reader(io.StringIO(original.read_bytes().decode("gbk"))))
    header, body = rows[0], rows[1:]
    department = "D001"
    mine = [r for r in body if r[1] == department]
    rating = header.index("评价等级")
    corrected = [r[:rating] + ["非常不满意" if r[rating] else ""] + r[rating + 1 :] for r in mine]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *corrected])
    correction = original.with_name("好差评明细_202508_更正.csv")
    correction.write_bytes(buffer.getvalue().encode("gbk"))
    later = original.stat().st_mtime + 86400
    os.utime(correction, (later, later))

    second = launch("2025-08", "2025-08")
    assert second.success, failure_messages(second)
    after = values()
    con = duckdb.connect(str(db), read_only=True)
    try:
        statuses = dict(
            con.sql(
                "select file_name || ':' || department_id, status from marts.fct_submissions "
                f"where source = 'service_transactions' and period = '2025-08-01' and department_id in ('{department}', 'D002')"
            ).fetchall()
        )
        history = dict(
            con.sql(
                "select submission_status, count(*) from history.history__service_transactions "
                f"where department_id = '{department}' and _period = '2025-08-01' group by 1"
            ).fetchall()
        )
        staged_from_original = con.sql(
            "select count(*) from staging.stg_lake__service_transactions s join marts.fct_submissions f "
            f"on f.file_hash = s.file_hash where s.department_id = '{department}' "
            "and f.file_name like '%好差评明细_202508.csv'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert statuses == {
        f"service_transactions/好差评明细_202508.csv:{department}": "superseded",
        f"service_transactions/好差评明细_202508_更正.csv:{department}": "current",
        "service_transactions/好差评明细_202508.csv:D002": "current",
    }
    assert history == {"superseded": len(mine), "current": len(mine)}
    assert staged_from_original == 0
    rated = sum(1 for r in mine if r[rating])
    assert rated > 0 and after[(department, "good_review_rate")] == 0.0
    assert before[(department, "good_review_rate")] > 0
    untouched = {k: v for k, v in before.items() if k[0] != department}
    assert {k: after[k] for k in untouched} == untouched
