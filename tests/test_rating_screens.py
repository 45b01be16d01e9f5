"""The rating-gaming screens' inputs and their analysts' marks (fast tests).

The screens themselves run in dbt over a real sample city: tests/test_rating_screens_planted.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

import duckdb
import numpy as np
import pytest

from pipelines.analytics.comments import fingerprint
from pipelines.ingest.mapping import load_mapping
from pipelines.publish import finding_marks
from pipelines.reference import ConfigError
from pipelines.sample.gaming import GAMING_SCREENS
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.test_ingest_landing import GOOD, HEADER, _land


def _rated_at(tmp_path):
    return duckdb.sql(
        f"select case_id, rated_at from '{tmp_path}/lake/service_transactions/*/*.parquet' order by case_id"
    ).fetchall()


def test_the_rating_time_lands_when_the_extract_has_it_and_is_checked(tmp_path):
    rows = [
        HEADER + ",评价时间",
        GOOD + ",2025-03-04 10:00:05",
        # rated before the case was received: quarantined, named
        GOOD.replace("SX1", "SX2") + ",2025-03-02 08:00:00",
        GOOD.replace("SX1", "SX3") + ",",
    ]
    landing, quarantine = _land(tmp_path, "\r\n".join(rows) + "\r\n")
    assert landing.rows_read == 3 and landing.rows_accepted == 2
    assert [(line, "评价时间早于受理时间" in reason) for line, _raw, reason in quarantine] == [(3, True)]
    assert _rated_at(tmp_path) == [("SX1", dt.datetime(2025, 3, 4, 10, 0, 5)), ("SX3", None)]


def test_an_extract_without_the_rating_time_still_lands_with_it_empty(tmp_path):
    landing, quarantine = _land(tmp_path, HEADER + "\r\n" + GOOD + "\r\n")
    assert (landing.rows_accepted, quarantine) == (1, [])
    assert _rated_at(tmp_path) == [("SX1", None)]


@pytest.mark.parametrize(
    ("optional", "expected"),
    [("[colour]", "optional_columns: 'colour' is not a mapped column"), ("[case_id]", "'case_id' is required")],
)
def test_optional_columns_must_be_mapped_and_not_required(tmp_path, optional, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: service_transactions\nfile_pattern: x/*.csv\nformat: csv\n"
        "columns: {case_id: 办件编号, department_id: 部门编码, service_item: 事项名称, channel: 渠道,"
        " received_at: 受理时间}\n"
        f"optional_columns: {optional}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_mapping(bad)
    assert "bad.yaml" in str(error.value) and expected in str(error.value)


def test_a_pasted_comment_has_one_fingerprint_however_it_is_spaced_or_punctuated():
    chars, key = fingerprint("感谢窗口工作人员热情周到的服务，办事效率非常高，点赞！")
    assert chars == 24  # 感谢窗口工作人员热情周到的服务 办事效率非常高 点赞: 15 + 7 + 2
    for variant in (
        "感谢窗口工作人员热情周到的服务, 办事效率非常高, 点赞!",  # half-width punctuation, spaces
        "感谢窗口工作人员热情周到的服务　办事效率非常高……点赞～～",  # full-width space, other marks
        "感谢[姓名]窗口工作人员热情周到的服务，办事效率非常高，点赞！",  # a masking token
    ):
        assert fingerprint(variant) == (chars, key), variant
    assert fingerprint("感谢窗口工作人员热情周到的服务，办事效率很高，点赞！")[1] != key
    assert fingerprint("ＡＢＣ abc")[1] == fingerprint("abcabc")[1]  # width and case


def test_the_generator_names_the_gamed_departments_and_times_every_rating(tmp_path):
    summary = generate_city(
        tmp_path,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=5,
        first_month="2025-07",
        last_month="2025-07",
        transactions=3000,
    )
    gamed = [d for screen in GAMING_SCREENS for d in summary.gaming[screen]]
    assert list(summary.gaming) == list(GAMING_SCREENS) and len(gamed) == len(set(gamed)) == 10
    assert not set(gamed) & set(summary.gaps)
    path = tmp_path / "service_transactions" / "好差评明细_202507.csv"
    with path.open(encoding="gbk", newline="") as handle:  # DuckDB reads no GBK: decoded here
        records = list(csv.DictReader(handle))

    def moment(text: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text) if text else None

    rows = [
        (r["部门编码"], r["办理渠道"], r["评价等级"], r["评价内容"], moment(r["办结时间"]), moment(r["评价时间"]))
        for r in records
    ]
    rated = [r for r in rows if r[2]]
    timed = [r for r in rated if r[5] is not None]
    assert len(timed) > 0.8 * len(rated)
    assert all(r[5] >= r[4] and r[5] < dt.datetime(2025, 8, 1) for r in timed)
    assert all(r[5] is None for r in rows if not r[2])
    # the pasted praise names its department and is found only there
    pasted = {r[3] for r in rows if r[0] in summary.gaming["copied_comment"] and "点赞" in r[3] and len(r[3]) > 20}
    assert pasted and all(
        not any(r[3] == text for r in rows if r[0] not in summary.gaming["copied_comment"]) for text in pasted
    )
    # instant counter ratings are the fast-rating departments' pattern
    seconds = np.array([(r[5] - r[4]).total_seconds() for r in timed if r[1] == "窗口"])
    fast_departments = [r[0] for r in timed if r[1] == "窗口" and (r[5] - r[4]).total_seconds() < 10]
    assert (seconds < 10).mean() < 0.1
    assert sum(d in summary.gaming["rating_fast"] for d in fast_departments) > len(fast_departments) / 2


def test_an_analysts_mark_is_kept_and_the_latest_one_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    first = finding_marks.add_mark(
        "rating_uniformity",
        "quarter",
        dt.date(2025, 7, 1),
        "D011",
        "已核实",
        "张三",
        "窗口人员代评",
        dt.datetime(2025, 10, 9, 9, 30),
    )
    finding_marks.add_mark(
        "rating_uniformity",
        "quarter",
        dt.date(2025, 7, 1),
        "D011",
        "已排除",
        "李四",
        "复核：评价器故障",
        dt.datetime(2025, 10, 10, 9, 30),
    )
    finding_marks.add_mark("copied_comment", "month", dt.date(2025, 8, 1), "D015", "已核实", "张三")
    marks = finding_marks.current_marks()
    assert marks[("rating_uniformity", "quarter", "2025-07-01", "D011")]["outcome"] == "已排除"
    assert marks[("rating_uniformity", "quarter", "2025-07-01", "D011")]["by"] == "李四"
    assert marks[("copied_comment", "month", "2025-08-01", "D015")]["outcome"] == "已核实"
    lines = finding_marks.marks_path().read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[0]) == first  # the history stays
    with pytest.raises(ValueError, match="outcome"):
        finding_marks.add_mark("copied_comment", "month", dt.date(2025, 8, 1), "D015", "待定", "张三")
    with pytest.raises(ValueError, match="screen"):
        finding_marks.add_mark("rating_vibes", "month", dt.date(2025, 8, 1), "D015", "已核实", "张三")
    with finding_marks.marks_path().open("a", encoding="utf-8") as handle:
        handle.write('{"screen": "copied_comment"\n')
    with pytest.raises(ValueError, match=r"finding_marks.jsonl, line 4"):
        finding_marks.current_marks()


def test_a_new_mark_makes_its_periods_edition_out_of_date_and_no_other(tmp_path, monkeypatch):
    """A mark shows beside its flag: its period's edition is drawn again, no other."""
    from pipelines.publish.config import Edition
    from pipelines.publish.stamps import edition_stamps

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    editions = [Edition.parse("2025-07"), Edition.parse("2025-08"), Edition.parse("2025-Q3")]
    reference = PROJECT_ROOT / "sources" / "reference"
    before = edition_stamps(editions, {}, reference)
    assert edition_stamps(editions, {}, reference) == before
    finding_marks.add_mark("rating_burst", "month", dt.date(2025, 7, 1), "D014", "已排除", "张三")
    after = edition_stamps(editions, {}, reference)
    assert after["2025-07"] != before["2025-07"]
    assert after["2025-08"] == before["2025-08"] and after["2025-Q3"] == before["2025-Q3"]
    finding_marks.add_mark("rating_burst", "quarter", dt.date(2025, 7, 1), "D014", "已核实", "张三")
    assert edition_stamps(editions, {}, reference)["2025-Q3"] != before["2025-Q3"]
