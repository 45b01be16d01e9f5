"""Appeals (申诉复核): the window on the holiday calendar, the appeal store, and the
whole loop through the CLI: file, refuse too late, refuse approval, decide, score
again, wait for the resubmission, approve, list in the edition, verify.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import pytest

from pipelines.appeals import store
from pipelines.appeals.window import Window, approval_refusals, last_working_day, window_of, working_calendar
from pipelines.publish.config import Edition
from pipelines.settings import PROJECT_ROOT
from tests.conftest import SHARED_CACHE, drafted_on
from tests.test_cli_errors import one_sentence, tiny_city

REFERENCE = PROJECT_ROOT / "sources" / "reference"
MERGED = "D031"  # 市粮食和物资储备局, merged into 市发改委 at the end of August 2025 (departments.yaml)
GOVPERF = str(Path(sys.executable).with_name("govperf"))


# ------------------------------------------------------------------ the window


def test_the_window_counts_working_days_on_the_holiday_calendar():
    is_working_day = working_calendar(REFERENCE)
    # Worked by hand from holidays.yaml 2025: 10-01..10-08 off (国庆、中秋), Sat 10-11 and
    # Sun 09-28 on (调休). From Tue 09-30: 10-09, 10-10, 10-11, 10-13, 10-14.
    assert last_working_day(dt.date(2025, 9, 30), 5, is_working_day) == dt.date(2025, 10, 14)
    # From Fri 09-26: Sun 09-28, Mon 09-29, Tue 09-30, then 10-09, 10-10.
    assert last_working_day(dt.date(2025, 9, 26), 5, is_working_day) == dt.date(2025, 10, 10)
    # An ordinary week: Fri 2025-07-04 → Mon..Fri of the next week.
    assert last_working_day(dt.date(2025, 7, 4), 5, is_working_day) == dt.date(2025, 7, 11)
    assert last_working_day(dt.date(2025, 7, 4), 0, is_working_day) == dt.date(2025, 7, 4)


def test_the_window_opens_with_the_first_draft_only(tmp_path):
    drafted_on(tmp_path, "2025-09-30 18:00", "2025-09")
    window = window_of(tmp_path, REFERENCE, "2025-09", 5)
    assert (window.first_draft, window.closes) == (dt.datetime(2025, 9, 30, 18, 0), dt.date(2025, 10, 14))
    assert window_of(tmp_path, REFERENCE, "2025-10", 5) is None
    # A later drawing does not move the window: the first line of an edition stands.
    from pipelines.appeals.window import record_first_drafts

    record_first_drafts(tmp_path, ["2025-09", "2025-10"], at=dt.datetime(2025, 11, 3, 9, 0))
    assert window_of(tmp_path, REFERENCE, "2025-09", 5).closes == dt.date(2025, 10, 14)
    assert window_of(tmp_path, REFERENCE, "2025-10", 5).first_draft == dt.datetime(2025, 11, 3, 9, 0)


def _appeal(appeal_id: str, status: str = "pending", indicator: str | None = None) -> store.Appeal:
    return store.Appeal(
        appeal_id=appeal_id,
        period_key="2025-09",
        period_type="month",
        period=dt.date(2025, 9, 1),
        department_id="D001",
        indicator_id=indicator,
        case_id=None if indicator else "C1",
        reason="理由",
        evidence="",
        filed_by="市财政局",
        filed_at=dt.datetime(2025, 10, 9, 9, 0),
        status=status,
    )


def test_approval_is_refused_for_each_unsettled_appeal_and_inside_the_window():
    window = Window("2025-09", dt.datetime(2025, 9, 30, 18, 0), 5, dt.date(2025, 10, 14))
    after = dt.datetime(2025, 10, 15, 9, 0)
    assert approval_refusals(window, "2025-09", after, [], {}) == []
    inside = approval_refusals(window, "2025-09", dt.datetime(2025, 10, 14, 17, 0), [], {})
    assert len(inside) == 1 and "to the end of 2025-10-14" in inside[0] and "from 2025-10-15" in inside[0]
    assert "no recorded first draft" in approval_refusals(None, "2025-09", after, [], {})[0]

    pending, rejected = _appeal("A0001"), _appeal("A0002", "rejected")
    figure = _appeal("A0003", "upheld", indicator="good_review_rate")
    marts = {"A0002": {"status": "rejected"}, "A0003": {"status": "upheld", "resubmitted_at": None}}
    reasons = approval_refusals(window, "2025-09", after, [pending, rejected, figure], marts)
    assert [r.split(" ")[0] for r in reasons] == ["appeal(s)", "upheld"]
    assert "A0001 not decided" in reasons[0] and "A0003 about a figure await" in reasons[1]
    # A decision the marts do not show yet: the period has not been scored again.
    reasons = approval_refusals(window, "2025-09", after, [rejected], {})
    assert reasons == ["the marts predate the decision on A0002: run `govperf run` to score it again"]
    marts["A0003"]["resubmitted_at"] = dt.datetime(2025, 10, 16, 9, 0)
    assert approval_refusals(window, "2025-09", after, [rejected, figure], marts) == []


def test_an_edition_holds_the_appeals_about_its_months_and_a_quarter_its_own():
    month, quarter = Edition.parse("2025-08"), Edition.parse("2025-Q3")
    assert month.holds_appeal("month", dt.date(2025, 8, 1))
    assert not month.holds_appeal("month", dt.date(2025, 9, 1))
    assert not Edition.parse("2025-07").holds_appeal("quarter", dt.date(2025, 7, 1))
    assert quarter.holds_appeal("quarter", dt.date(2025, 7, 1)) and quarter.holds_appeal("month", dt.date(2025, 9, 1))
    assert not quarter.holds_appeal("month", dt.date(2025, 10, 1))


# ------------------------------------------------------------------ the store


def _file(home: Path, **overrides) -> store.Appeal:
    fields = {
        "period_key": "2025-08",
        "period_type": "month",
        "period": dt.date(2025, 8, 1),
        "department_id": "D017",
        "indicator_id": None,
        "case_id": "SX1",
        "reason": "办事人王建国（电话13912345678）误评",
        "evidence": "身份证号110101199003074514的办事人签字",
        "filed_by": "市农业农村局",
        "at": dt.datetime(2025, 9, 3, 9, 0),
    }
    return store.file_appeal(home, **(fields | overrides))


def test_appeals_are_numbered_masked_decided_once_and_in_the_ledger(tmp_path):
    first = _file(tmp_path)
    second = _file(tmp_path, case_id=None, indicator_id="good_review_rate", reason="口径有误")
    assert (first.appeal_id, second.appeal_id) == ("A0001", "A0002")
    text = store.appeals_path(tmp_path).read_text(encoding="utf-8")
    for personal in ("13912345678", "110101199003074514", "王建国"):
        assert personal not in text
    assert "[手机号]" in first.reason and "[身份证号]" in first.evidence and "[姓名]" in first.reason

    decided = store.decide(tmp_path, "A0001", "upheld", "李四", "核实为误评", at=dt.datetime(2025, 9, 4, 10, 0))
    assert (decided.status, decided.status_label, decided.decided_by) == ("upheld", "申诉成立", "李四")
    with pytest.raises(store.AppealRefused, match="A0001 was decided already: 申诉成立, by 李四"):
        store.decide(tmp_path, "A0001", "rejected", "王五", "改判")
    with pytest.raises(store.AppealRefused, match="no appeal A0009"):
        store.decide(tmp_path, "A0009", "upheld", "李四", "x")
    with pytest.raises(store.AppealRefused, match="cannot come before the appeal"):
        store.decide(tmp_path, "A0002", "rejected", "李四", "x", at=dt.datetime(2025, 9, 1, 9, 0))
    with pytest.raises(store.AppealRefused, match="one figure .* or one case"):
        _file(tmp_path, indicator_id="good_review_rate")
    with pytest.raises(store.AppealRefused, match="reason"):
        _file(tmp_path, reason="  ")

    appeals = store.current_appeals(tmp_path)
    assert [(a.appeal_id, a.status) for a in appeals.values()] == [("A0001", "upheld"), ("A0002", "pending")]
    table = store.appeals_table(appeals)
    assert table.column("status").to_pylist() == ["upheld", "pending"]
    assert table.column("case_id").to_pylist() == ["SX1", None]

    from pipelines.ledger.events import ledger_of

    kinds = [(e.kind, e.body["appeal_id"]) for e in ledger_of(tmp_path).entries() if e.kind.startswith("appeal_")]
    assert kinds == [("appeal_filed", "A0001"), ("appeal_filed", "A0002"), ("appeal_decided", "A0001")]

    with store.appeals_path(tmp_path).open("a", encoding="utf-8") as handle:
        handle.write('{"event": "filed", "appeal_id": \n')
    with pytest.raises(ValueError, match=r"appeals.jsonl, line 4, column \d+: not JSON"):
        store.current_appeals(tmp_path)


def test_one_appeal_at_a_time_per_case_or_figure_and_again_after_a_rejection(tmp_path):
    _file(tmp_path)
    with pytest.raises(store.AppealRefused, match=r"D017 already appealed case SX1 \(A0001, 待复核\)"):
        _file(tmp_path)
    _file(tmp_path, department_id="D018")  # the same case number in another department is another case
    store.decide(tmp_path, "A0001", "rejected", "李四", "证据不足", at=dt.datetime(2025, 9, 4, 10, 0))
    assert _file(tmp_path, evidence="补充的通话录音").appeal_id == "A0003"
    _file(tmp_path, case_id=None, indicator_id="good_review_rate")
    with pytest.raises(store.AppealRefused, match="already appealed good_review_rate"):
        _file(tmp_path, case_id=None, indicator_id="good_review_rate", reason="又一次")
    _file(tmp_path, case_id=None, indicator_id="good_review_rate", period_key="2025-09", period=dt.date(2025, 9, 1))


def _file_five(home: str) -> list[str]:
    return [_file(Path(home), case_id=f"SX{os.getpid()}-{n}").appeal_id for n in range(5)]


def test_appeals_filed_at_once_from_four_processes_get_distinct_numbers(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        numbers = [n for batch in pool.map(_file_five, [str(tmp_path)] * 4) for n in batch]
    assert sorted(numbers) == [f"A{n:04d}" for n in range(1, 21)]
    assert len(store.current_appeals(tmp_path)) == 20
    # The ledger holds them as the file does: verify finds nothing amiss.
    from types import SimpleNamespace

    from pipelines.audit.verify import PeriodFilter, Report, check_appeals
    from pipelines.ledger.events import ledger_of

    report = Report()
    check_appeals(report, SimpleNamespace(home=tmp_path), ledger_of(tmp_path).entries(), PeriodFilter(None))
    assert report.ok and report.checked["appeals and decisions"] == 20, report.mismatches


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--period", "2025-08", "--department", "D017"], 2, "give --indicator (a figure) or --case"),
        (["--period", "2025-Q3", "--department", "D017", "--case", "SX1"], 2, "the month it was completed"),
        (["--period", "2025-08", "--department", "D999", "--case", "SX1"], 2, "'D999' is not in departments.yaml"),
        (["--period", "2025-08", "--department", "D017", "--indicator", "nope"], 2, "'nope' is not an indicator"),
        (["--period", "2025-08", "--department", "D017", "--indicator", "good_review_rate", "--at", "2099-01-01 09:00"], 2, "in the future"),
        (["--period", "2025-08", "--department", "D017", "--indicator", "good_review_rate"], 1, "2025-08 has not been drafted yet"),
        (["--period", "2025-10", "--department", MERGED, "--indicator", "good_review_rate"], 2, "did not exist in 2025-10"),
    ],
)  # fmt: skip
def test_filing_refuses_what_cannot_be_appealed(args, code, says, govperf_home):
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(main, ["appeal", "file", *args, "--reason", "理由"])
    assert result.exit_code == code and says in result.output, result.output
    assert not store.appeals_path(govperf_home).exists()


# ------------------------------------------------------------------ the whole loop


def govperf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([GOVPERF, *args], env=env, capture_output=True, text=True, timeout=900)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    return env | {
        "GOVPERF_HOME": str(root / "home"),
        "GOVPERF_INBOX": str(root / "inbox"),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(root / "home" / "dagster_home"),
    }


def _query(root: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(root / "home" / "warehouse" / "govperf.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _good_review_rate(root: Path, department_id: str) -> tuple[int, float]:
    return _query(
        root,
        "select n_obs, raw_value from marts.fct_indicator_values where indicator_id = 'good_review_rate'"
        " and period = '2025-08-01' and period_type = 'month' and department_id = ?",
        [department_id],
    )[0]


def _resubmit(inbox: Path, department_id: str) -> None:
    """The department's August service transactions again, as a corrected file."""
    original = inbox / "service_transactions" / "好差评明细_202508.csv"
    rows = list(csv.reader(io.StringIO(original.read_bytes().decode("gbk"))))
    column = rows[0].index("部门编码")
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([rows[0], *(r for r in rows[1:] if r[column] == department_id)])
    (original.parent / "好差评明细_202508_更正.csv").write_bytes(out.getvalue().encode("gbk"))


@pytest.mark.slow
def test_an_appeal_goes_from_filing_to_the_published_edition_through_the_cli(tmp_path):
    tiny_city(tmp_path / "inbox")
    env = _env(tmp_path)
    home = tmp_path / "home"
    assert govperf("run", env=env).returncode == 0
    # The editions were drafted on the evening of 30 September: the window then spans 国庆.
    drafted_on(home, "2025-09-30 18:00")

    case_id, appellant = _query(
        tmp_path,
        "select case_id, department_id from staging.stg_lake__service_transactions where rating <= 2"
        " and not coalesce(appeal_upheld, false) and completed_month = '2025-08-01'"
        " and department_id in (select department_id from marts.fct_indicator_values where indicator_id ="
        " 'good_review_rate' and period = '2025-08-01' and n_obs >= 5) order by case_id limit 1",
    )[0]
    figure_department = _query(
        tmp_path,
        "select min(department_id) from marts.fct_indicator_values where indicator_id = 'good_review_rate'"
        " and period = '2025-08-01' and period_type = 'month' and department_id <> ? and n_obs > 0",
        [appellant],
    )[0][0]
    rated_before, rate_before = _good_review_rate(tmp_path, appellant)

    filed = govperf(
        "appeal", "file", "--period", "2025-08", "--department", appellant, "--case", case_id,
        "--reason", "办事人李明（13812345678）来电称误点差评", "--evidence", "通话录音", "--at", "2025-10-13 10:00",
        env=env,
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    assert "filed appeal A0001" in filed.stdout and "appeals close at the end of 2025-10-14" in filed.stdout
    figure = govperf(
        "appeal", "file", "--period", "2025-08", "--department", figure_department, "--indicator", "good_review_rate",
        "--reason", "系统重复计入评价", "--at", "2025-10-14 17:00", env=env,
    )  # fmt: skip
    assert figure.returncode == 0, figure.stderr
    late = govperf(
        "appeal", "file", "--period", "2025-08", "--department", appellant, "--indicator", "good_review_rate",
        "--reason", "逾期", "--at", "2025-10-15 09:00", env=env,
    )  # fmt: skip
    assert late.returncode == 1 and "too late" in one_sentence(late) and "to the end of 2025-10-14" in late.stderr
    elsewhere = govperf(
        "appeal", "file", "--period", "2025-08", "--department", figure_department, "--case", case_id,
        "--reason", "x", "--at", "2025-10-13 10:00", env=env,
    )  # fmt: skip
    assert elsewhere.returncode == 2 and f"belongs to {appellant}, not {figure_department}" in elsewhere.stderr
    assert "13812345678" not in (home / "state" / "appeals.jsonl").read_text(encoding="utf-8")

    inside = govperf("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-10-14 17:30", env=env)
    assert inside.returncode == 1
    assert "to the end of 2025-10-14" in inside.stderr and "A0001, A0002 not decided" in inside.stderr

    for appeal_id, at in (("A0001", "2025-10-15 09:00"), ("A0002", "2025-10-15 09:05")):
        decided = govperf(
            "appeal", "decide", appeal_id, "--upheld", "--by", "李四", "--note", "核实属实", "--at", at, env=env
        )
        assert decided.returncode == 0, decided.stderr
    again = govperf("appeal", "decide", "A0001", "--rejected", "--by", "王五", "--note", "改判", env=env)
    assert again.returncode == 1 and "decided already" in again.stderr

    stale = govperf("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-10-15 10:00", env=env)
    assert stale.returncode == 1 and "the marts predate the decision on A0001, A0002" in stale.stderr
    plan = govperf("run", "--dry-run", env=env)
    assert "2025-08 because an appeal about it was filed or decided" in plan.stderr
    assert govperf("run", env=env).returncode == 0

    # The upheld bad review is out of the rated cases and of the bad ones: worked from the counts before.
    rated_after, rate_after = _good_review_rate(tmp_path, appellant)
    good = round(rate_before * rated_before / 100)
    assert rated_after == rated_before - 1 and rate_after == pytest.approx(100 * good / rated_after, abs=1e-4)

    waiting = govperf("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-10-15 10:00", env=env)
    assert waiting.returncode == 1
    assert "A0002 about a figure await the department's corrected resubmission" in waiting.stderr
    assert "A0001" not in one_sentence(waiting)

    _resubmit(tmp_path / "inbox", figure_department)
    assert govperf("run", env=env).returncode == 0
    approved = govperf("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-10-15 10:00", env=env)
    assert approved.returncode == 0, approved.stderr

    appeals = _query(
        tmp_path, "select appeal_id, status, subject, resubmitted_file, effect from marts.fct_appeals order by 1"
    )
    assert appeals == [
        ("A0001", "upheld", "case", None, "该件差评不计入评价类指标，已重新计分"),
        ("A0002", "upheld", "figure", "service_transactions/好差评明细_202508_更正.csv", "已更正重报，已重新计分"),
    ]
    revision = home / "bulletins" / "published" / "monthly" / "2025-08" / "r1"
    edition = (revision / "bulletin_2025-08.html").read_text(encoding="utf-8")
    section = edition.split('<section id="appeals">')[1].split("</section>")[0]
    assert "提出申诉 2 件：申诉成立 2 件" in section and f"案件 {case_id}" in section and "好评率" in section
    assert "[手机号]" in section and "13812345678" not in edition and "李四" in section
    page = (revision / "bulletin_2025-08_departments" / f"{appellant}.html").read_text(encoding="utf-8")
    mine = page.split('<section id="department-appeals">')[1].split("</section>")[0]
    assert "A0001" in mine and "A0002" not in mine
    assert "fct_appeals" in json.loads((revision / "manifest.json").read_text())["mart_hashes"]

    # Forced inside the window: only with a note, and the manifest says what was overridden.
    unexplained = govperf(
        "approve", "--period", "2025-07", "--by", "张三", "--at", "2025-10-14 12:00", "--force", env=env
    )
    assert unexplained.returncode == 2 and "--force needs a --note" in unexplained.stderr
    forced = govperf(
        "approve", "--period", "2025-07", "--by", "张三", "--at", "2025-10-14 12:00", "--force",
        "--note", "市政府常务会议要求提前通报", env=env,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    manifest = json.loads(
        (home / "bulletins" / "published" / "monthly" / "2025-07" / "r1" / "manifest.json").read_text()
    )
    assert manifest["appeals"]["window_closes"] == "2025-10-14"
    assert "to the end of 2025-10-14" in manifest["appeals"]["forced_over"][0]
    august = json.loads((revision / "manifest.json").read_text())["appeals"]
    assert august == {
        "first_draft": "2025-09-30 18:00",
        "window_closes": "2025-10-14",
        "appeals": {"A0001": "upheld", "A0002": "upheld"},
        "forced_over": [],
    }
    # Once published, the results are final; and nobody approves ahead of time.
    final = govperf(
        "appeal", "file", "--period", "2025-08", "--department", appellant, "--indicator", "good_review_rate",
        "--reason", "再次申诉", "--at", "2025-10-14 09:00", env=env,
    )  # fmt: skip
    assert final.returncode == 1 and "2025-08 is published already" in one_sentence(final)
    ahead = govperf("approve", "--period", "2025-09", "--by", "张三", "--at", "2099-01-01 09:00", env=env)
    assert ahead.returncode == 1 and "in the future" in one_sentence(ahead)

    verified = govperf("verify", env=env)
    assert verified.returncode == 0, verified.stdout
    assert "appeals and decisions 4" in verified.stdout
    # An appeal edited after the fact no longer matches the ledger.
    state = home / "state" / "appeals.jsonl"
    state.write_text(state.read_text(encoding="utf-8").replace("核实属实", "不予支持", 1), encoding="utf-8")
    tampered = govperf("verify", env=env)
    assert tampered.returncode == 1 and "decided appeal A0001" in tampered.stdout and "edited" in tampered.stdout
