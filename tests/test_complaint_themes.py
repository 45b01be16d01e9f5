"""Complaint themes (marts.fct_complaint_themes): keywords of citizens' complaint
comments, counted per period, per department and city-wide.

The keyword step itself is tested on the real configuration; the mart by a real
pipeline run (Dagster, ingest, dbt) over the small sample city in which every
comment was blanked and a few planted: bad reviews mentioning 排队 and 窗口, a good
review mentioning them that must not count, a bad review overturned on appeal
that must not count, one naming a person, one carrying <script>, one completed
in the next month, and a low and a high survey response.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from pipelines.ingest import keywords
from pipelines.ingest.keywords import KeywordConfig, comment_keywords, load_config
from pipelines.ingest.masking import mask_free_text
from pipelines.reference import ConfigError
from pipelines.runner import failure_messages, launch
from pipelines.settings import settings

NAME = "王秀英"


def test_keywords_come_from_the_masked_text_and_skip_tokens_stopwords_and_markup():
    assert comment_keywords("排队两个小时，窗口只开了一个") == "排队,窗口"
    masked = mask_free_text(f"办事员{NAME}态度恶劣，排队也没人管，电话13812345678")
    assert NAME not in masked
    words = comment_keywords(masked).split(",")
    assert "排队" in words
    assert not {"姓名", "手机号", NAME, "办事员", "电话13812345678"} & set(words)
    assert comment_keywords("<script>alert(1)</script>") is None
    assert comment_keywords("[姓名] [手机号#0a1b2c] [身份证号] [固话] 12345，。") is None
    assert comment_keywords("工作人员没有解决问题，办理很慢") is None  # stopwords only
    # Deterministic, and at most top_k keywords, each with a Chinese character.
    text = "网上申报系统无法提交，窗口排队时间太长，材料反复要求补交，电话咨询无人接听"
    assert comment_keywords(text) == comment_keywords(text)
    assert len(comment_keywords(text).split(",")) == load_config().top_k


def test_the_keyword_configuration_is_validated(tmp_path):
    load_config()  # the project's own file is valid
    good = {"top_k": 4, "allow_pos": ["n", "v"], "stopwords": ["问题"]}
    KeywordConfig.model_validate(good)
    for bad in (
        {**good, "allow_pos": ["n", "nr"]},
        {**good, "stopwords": ["问题", "问题"]},
        {**good, "top_k": 0},
        {**good, "stopwords": [" 问题"]},
        {**good, "extra": 1},
    ):
        with pytest.raises(ValueError):
            KeywordConfig.model_validate(bad)
    path = tmp_path / "keywords.yaml"
    path.write_text("top_k: 4\nallow_pos: [n, nrfg]\nstopwords: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="person names"):
        load_config(path)


# ------------------------------------------------------------------ the mart

DEPT_1, DEPT_2 = "D001", "D002"
# (case, department, received, completed, rating, comment, appeal outcome)
PLANTED = [
    ("KW1", DEPT_1, "2025-07-07 09:00:00", "2025-07-08 10:00:00", "非常不满意", "排队两个小时，窗口只开了一个", ""),
    ("KW2", DEPT_1, "2025-07-07 09:10:00", "2025-07-08 10:00:00", "不满意", "窗口排队的人太多，等了很久", ""),
    (
        "KW3",
        DEPT_1,
        "2025-07-07 09:20:00",
        "2025-07-08 10:00:00",
        "非常不满意",
        f"办事员{NAME}态度恶劣，排队也没人管",
        "",
    ),
    ("KW4", DEPT_1, "2025-07-07 09:30:00", "2025-07-08 10:00:00", "满意", "排队很快，窗口服务好", ""),  # good review
    (
        "KW5",
        DEPT_1,
        "2025-07-07 09:40:00",
        "2025-07-08 10:00:00",
        "不满意",
        "<script>alert(1)</script>网上申报系统无法提交",
        "",
    ),
    ("KW6", DEPT_2, "2025-07-07 09:00:00", "2025-07-08 10:00:00", "非常不满意", "排队时间太长，窗口太少", ""),
    ("KW7", DEPT_2, "2025-07-07 09:10:00", "2025-07-08 10:00:00", "不满意", "排队排了一上午，窗口不开", "申诉成立"),
    ("KW8", DEPT_2, "2025-07-28 09:00:00", "2025-08-04 10:00:00", "非常不满意", "窗口排队太久", ""),  # August
]
# (response, department, scores, comment)
SURVEYS = [
    ("WJKW1", "市政务服务和数据管理局", 40, "窗口前排队等了三个小时"),  # low: a complaint
    ("WJKW2", "市政务服务和数据管理局", 95, "排队很快，窗口服务好"),  # high: not one
]


def _blank_and_plant(inbox: Path) -> None:
    for path in sorted((inbox / "service_transactions").glob("*.csv")):
        mtime = path.stat().st_mtime
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("gbk"))))
        header, body = rows[0], rows[1:]
        comment, rating = header.index("评价内容"), header.index("评价等级")
        appealed, outcome = header.index("是否申诉"), header.index("申诉结果")
        for row in body:
            row[comment] = ""
        if path.name.endswith("202507.csv"):
            for case, dept, received, completed, level, text, appeal in PLANTED:
                row = list(body[0])
                row[0], row[1], row[2] = case, dept, ""
                row[header.index("受理时间")], row[header.index("办结时间")] = received, completed
                row[rating], row[comment] = level, text
                row[appealed], row[outcome] = ("是", appeal) if appeal else ("", "")
                row[header.index("是否整改")] = row[header.index("整改时间")] = ""
                row[header.index("评价时间")] = ""  # not the template row's: it may precede this receipt
                body.append(row)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows([header, *body])
        path.write_bytes(buffer.getvalue().encode("gbk"))
        os.utime(path, (mtime, mtime))

    for path in sorted((inbox / "surveys").glob("*.xlsx")):
        mtime = path.stat().st_mtime
        workbook = load_workbook(path)
        sheet = workbook["问卷结果"]
        header_row = next(r for r in sheet.iter_rows() if r[0].value == "问卷编号")
        comment = [c.value for c in header_row].index("意见建议")
        for row in sheet.iter_rows(min_row=header_row[0].row + 1):
            row[comment].value = None
        if path.name.endswith("202507.xlsx"):
            for response, dept, score, text in SURVEYS:
                sheet.append([response, dept, "2025-07-15", score, score, score, score, text])
        workbook.save(path)
        os.utime(path, (mtime, mtime))


@pytest.mark.slow
def test_complaint_themes_count_bad_reviews_and_low_surveys_per_department_and_city_wide(govperf_home):
    _blank_and_plant(settings().inbox)
    keywords.reset()
    result = launch("2025-07", "2025-09")
    assert result.success, failure_messages(result)

    con = duckdb.connect(str(settings().duckdb_path), read_only=True)
    try:
        rows = con.sql(
            "select strftime(period, '%Y-%m'), period_type, scope, coalesce(department_id, '-'), keyword, "
            "mentions, complaints, keyword_rank from marts.fct_complaint_themes order by all"
        ).fetchall()
        staged = dict(
            con.sql(
                "select case_id, comment_keywords from staging.stg_lake__service_transactions where case_id like 'KW%'"
            ).fetchall()
        )
    finally:
        con.close()

    def themes(period, period_type, scope, department):
        return {
            k: (m, c, r) for p, t, s, d, k, m, c, r in rows if (p, t, s, d) == (period, period_type, scope, department)
        }

    # July, D001: KW1, KW2, KW3, KW5 and the low survey response; not the good review KW4.
    assert themes("2025-07", "month", "department", DEPT_1) == {
        "排队": (4, 5, 1),
        "窗口": (3, 5, 2),
        "态度恶劣": (1, 5, 3),
        "提交": (1, 5, 4),
        "申报": (1, 5, 5),
        "系统": (1, 5, 6),
        "网上": (1, 5, 7),
    }
    # July, D002: KW6 only (KW7 overturned on appeal; KW8 completed in August).
    assert themes("2025-07", "month", "department", DEPT_2) == {"排队": (1, 1, 1), "窗口": (1, 1, 2)}
    assert themes("2025-07", "month", "city", "-") == {
        "排队": (5, 6, 1),
        "窗口": (4, 6, 2),
        "态度恶劣": (1, 6, 3),
        "提交": (1, 6, 4),
        "申报": (1, 6, 5),
        "系统": (1, 6, 6),
        "网上": (1, 6, 7),
    }
    assert themes("2025-08", "month", "department", DEPT_2) == {"排队": (1, 1, 1), "窗口": (1, 1, 2)}
    assert themes("2025-08", "month", "city", "-") == {"排队": (1, 1, 1), "窗口": (1, 1, 2)}
    assert themes("2025-09", "month", "city", "-") == {}
    # The quarter pools its months.
    assert themes("2025-07", "quarter", "department", DEPT_2) == {"排队": (2, 2, 1), "窗口": (2, 2, 2)}
    assert themes("2025-07", "quarter", "city", "-")["排队"] == (6, 7, 1)
    assert themes("2025-07", "quarter", "city", "-")["窗口"] == (5, 7, 2)
    # Nothing else in the mart: every comment but the planted ones was blanked.
    assert {(p, t, s, d) for p, t, s, d, *_ in rows} == {
        ("2025-07", "month", "department", DEPT_1),
        ("2025-07", "month", "department", DEPT_2),
        ("2025-07", "month", "city", "-"),
        ("2025-08", "month", "department", DEPT_2),
        ("2025-08", "month", "city", "-"),
        ("2025-07", "quarter", "department", DEPT_1),
        ("2025-07", "quarter", "department", DEPT_2),
        ("2025-07", "quarter", "city", "-"),
    }
    # The name and the markup never became keywords; the good review has its keywords
    # in staging, and the mart left it out.
    every_keyword = {k for *_, k, _m, _c, _r in rows}
    assert not {NAME, "姓名", "script", "alert", "1"} & every_keyword
    assert staged["KW4"] == "排队,窗口" and staged["KW3"] == "态度恶劣,排队"
    assert staged["KW5"] == "提交,申报,网上,系统"

    # Comment sentiment, on the same planted comments: each scored once, in its
    # completion month; the four complaints negative, the good review not (KW7's
    # comment counts: an appeal overturns the rating, not what was written).
    con = duckdb.connect(str(settings().duckdb_path), read_only=True)
    try:
        sentiment = con.sql(
            "select department_id, n_scored, n_negative from marts.fct_comment_sentiment "
            "where source = 'service_transactions' and period = '2025-07-01' and period_type = 'month' order by 1"
        ).fetchall()
        good = con.sql(
            "select c.negative_p from staging.stg_lake__service_transactions as t "
            "inner join staging.stg_lake__comment_sentiment as c "
            "on c.source = 'service_transactions' and c.file_hash = t.file_hash and c.source_line = t.source_line "
            "where t.case_id = 'KW4'"
        ).fetchall()
    finally:
        con.close()
    assert sentiment == [(DEPT_1, 5, 4), (DEPT_2, 2, 2)]
    assert good[0][0] < 0.5
