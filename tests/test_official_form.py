"""公文格式 (bulletin.yaml official_form, GB/T 9704): the settings and their validation, the
Chinese date of the 落款, and editions rendered as a draft and approved on the bulletin
tests' hand-made marts with twelve departments ranked: 红头 over a red rule, 文号, 主送,
the one-page 要点 first (grade counts, top and bottom five as fct_rankings has them,
findings from the data), 落款 and 抄送; and the plain edition when the form is off.
The printed 要点 (one A4 page alone) is checked in a browser in tests/test_browser.py."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.bulletin import render_edition
from pipelines.publish.config import BulletinConfig, Edition, load_bulletin_config
from pipelines.publish.official_form import arabic_date, chinese_date, chinese_number
from pipelines.reference import ConfigError
from tests.test_bulletin_render import MARCH, _build_marts

REFERENCE = Path(__file__).resolve().parents[1] / "sources" / "reference"
MONTH = Edition.month(MARCH)
FORM = {
    "enabled": True,
    "masthead": "测试市绩效管理办公室文件",
    "main_recipients": ["各区人民政府", "市政府各部门"],
    "copy_to": ["市委办公厅", "市人大常委会办公厅"],
    "signatory": "测试市绩效管理办公室",
}
CONFIG = BulletinConfig.model_validate(
    {
        "title": "政府部门绩效通报",
        "issuer": "测试市绩效办",
        "headline": ["I1", "I2", "I3"],
        "official_form": FORM,
        "document_number": {"prefix": "测绩办"},
    }
)
PLAIN = CONFIG.model_copy(update={"official_form": CONFIG.official_form.model_copy(update={"enabled": False})})
# Six departments more in March (ranks 7-12), so the top five and the bottom five differ.
EXTRA = [
    (f"D{n}", f"市测试局{n}", 70.0 - 2 * (n - 10), 7 + n - 10, "合格" if n < 13 else "不合格") for n in range(10, 16)
]


def approval(revision: int = 1, at: str = "2024-04-20 09:00", number: str | None = "测绩办〔2024〕7号") -> dict:
    record = {
        "revision": revision,
        "approved_by": "李四",
        "approved_at": at,
        "note": "首次发布" if revision == 1 else "更正数据",
        "built_from": None,
    }
    return record | ({"document_number": number} if number else {})


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("official") / "govperf.duckdb"
    _build_marts(path)
    con = duckdb.connect(str(path))
    con.executemany(
        "insert into marts.dim_department values (?, ?, '社会服务类', null, '2020-01-01', null)",
        [(d, name) for d, name, *_ in EXTRA],
    )
    con.executemany(
        "insert into marts.fct_rankings (period, period_type, department_id, composite_score, rank, peer_group_rank, "
        "rank_change, grade, peer_group, bonus_points) values (?, 'month', ?, ?, ?, 1, 0, ?, '社会服务类', 0)",
        [(MARCH, d, score, rank, grade) for d, _name, score, rank, grade in EXTRA],
    )
    con.close()
    return path


def _render(warehouse: Path, out: Path, config: BulletinConfig = CONFIG, record: dict | None = None) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return render_edition(con, MONTH, out, approval=record, config=config).read_text(encoding="utf-8")
    finally:
        con.close()


@pytest.fixture(scope="module")
def draft(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _render(warehouse, tmp_path_factory.mktemp("draft"))


@pytest.fixture(scope="module")
def approved(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _render(warehouse, tmp_path_factory.mktemp("approved"), record=approval())


def _text(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", "", html)).strip()  # keeps the ideographic space


def _element(html: str, pattern: str) -> str:
    found = re.search(pattern, html, re.S)
    assert found, f"no {pattern} in the edition"
    return _text(found[0])


def _body(html: str) -> str:
    return html[html.index("<body>") :]


# --- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 4, 20), "二〇二六年四月二十日"),
        (dt.date(2026, 10, 10), "二〇二六年十月十日"),
        (dt.date(2026, 11, 11), "二〇二六年十一月十一日"),
        (dt.date(2026, 12, 21), "二〇二六年十二月二十一日"),
        (dt.date(2026, 1, 30), "二〇二六年一月三十日"),
        (dt.date(2025, 12, 31), "二〇二五年十二月三十一日"),
        (dt.date(2000, 1, 1), "二〇〇〇年一月一日"),
        (dt.date(2005, 2, 9), "二〇〇五年二月九日"),
        (dt.date(2010, 3, 19), "二〇一〇年三月十九日"),
        (dt.date(1999, 9, 29), "一九九九年九月二十九日"),
    ],
)
def test_a_date_in_chinese_numerals(day: dt.date, expected: str) -> None:
    assert chinese_date(day) == expected


def test_arabic_dates_and_numbers_out_of_range() -> None:
    assert arabic_date(dt.date(2026, 4, 5)) == "2026年4月5日"  # no leading zeros
    assert [chinese_number(n) for n in (1, 10, 19, 20, 99)] == ["一", "十", "十九", "二十", "九十九"]
    for wrong in (0, 100):
        with pytest.raises(ValueError, match="between 1 and 99"):
            chinese_number(wrong)


# --- configuration ----------------------------------------------------------------------


def test_the_sample_turns_the_form_on_and_a_missing_block_leaves_it_off(tmp_path: Path) -> None:
    form = load_bulletin_config(REFERENCE, check_catalogue=True).official_form
    assert form.enabled and form.masthead and form.signatory
    assert form.main_recipients and form.copy_to and form.date_numerals == "chinese"
    assert not load_bulletin_config(tmp_path).official_form.enabled  # no bulletin.yaml: the defaults


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (
            r"  date_numerals: chinese.*",
            "  date_numerals: roman",
            "official_form › date_numerals: Input should be 'chinese' or 'arabic'",
        ),
        (
            r"  masthead: .*",
            "  masthead: ''",
            "official_form: Value error, enabled, but masthead not set",
        ),
        (
            r"  prefix: .*",
            "  prefix: 绩效办〔2026〕",
            "document_number › prefix: Value error, '绩效办〔2026〕': write the 机关代字 alone",
        ),
        (
            r"  main_recipients: .*",
            "  main_recipients: [各区人民政府, 各区人民政府]",
            "official_form › main_recipients: Value error, a name is listed twice: 各区人民政府",
        ),
        (
            r"  main_recipients: .*",
            "  main_recipients: 各区人民政府",
            "official_form › main_recipients: Input should be a valid list",
        ),
        (
            r"  copy_to: .*",
            "  copy_to: [市委办公厅。]",
            "official_form › copy_to: Value error, '市委办公厅。': a body's name, without punctuation",
        ),
        (
            r"  signatory: .*",
            "  signatory: 市政府绩效管理办公室\n  seal: true",
            "official_form › seal: Extra inputs are not permitted",
        ),
    ],
    ids=[
        "date numerals",
        "no masthead",
        "prefix with year",
        "listed twice",
        "not a list",
        "punctuation",
        "unknown key",
    ],
)
def test_a_bad_official_form_is_refused_at_load_with_its_place(
    tmp_path: Path, line: str, replacement: str, message: str
) -> None:
    text = (REFERENCE / "bulletin.yaml").read_text(encoding="utf-8")
    text, count = re.subn(line, replacement, text)
    assert count == 1, line
    (tmp_path / "bulletin.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_bulletin_config(tmp_path)
    assert str(refused.value).startswith(f"{tmp_path / 'bulletin.yaml'}: {message}"), str(refused.value)


# --- the edition ---------------------------------------------------------------------------


def test_a_draft_has_the_masthead_red_rule_a_number_placeholder_and_recipients(draft: str) -> None:
    body = _body(draft)
    header = re.search(r'<header class="masthead official-masthead">.*?</header>', body, re.S)[0]
    assert _element(header, r'<p class="issuer-mark"[^>]*>.*?</p>') == "测试市绩效管理办公室文件"
    assert _element(header, r'<p class="draft-marker">.*?</p>') == "草稿 · 未经审核签发"
    # 文号 centred above the red rule, then the title and the 主送 line
    number = header.index('class="document-number"')
    assert number < header.index('<hr class="red-rule">') < header.index("<h1>") < header.index("main-recipients")
    assert _element(header, r'<p class="document-number">.*?</p>') == "测绩办〔2024〕\u3000号（草稿，待审定后编号）"
    assert _element(header, r'<p class="main-recipients">.*?</p>') == "各区人民政府，市政府各部门："
    assert "<h1>2024年3月政府部门绩效通报</h1>" in header
    # 落款 after the parts, before the appendices; 抄送 at the end
    signature = body.index('<div class="signature">')
    assert body.index('<section id="departments">') < signature < body.index('<section id="data-quality"')
    assert _element(body, r'<div class="signature">.*?</div>') == "测试市绩效管理办公室 （审定后填写）"
    colophon = _element(body, r'<div class="colophon">.*?</div>')
    assert colophon.startswith("抄送：市委办公厅，市人大常委会办公厅。") and "（审定后填写）" in colophon
    assert body.index('<div class="colophon">') > body.index('<section id="methodology"')
    assert '"— " counter(page) " —"' in draft and "--official-red" in draft  # page numbers, official_form.css


def test_an_approved_edition_shows_its_number_and_the_date_of_approval(approved: str) -> None:
    assert "草稿" not in _body(approved).split("<footer>")[0]
    assert _element(approved, r'<p class="document-number">.*?</p>') == "测绩办〔2024〕7号"  # revision 1: no 版次
    assert _element(approved, r'<div class="signature">.*?</div>') == "测试市绩效管理办公室 二〇二四年四月二十日"
    colophon = _element(approved, r'<div class="colophon">.*?</div>')
    assert colophon.endswith("测试市绩效管理办公室 2024年4月20日印发")  # 印发日期 in Arabic numerals


def test_a_revision_says_so_beside_its_number_and_arabic_dates_can_be_chosen(warehouse: Path, tmp_path: Path) -> None:
    arabic = CONFIG.model_copy(
        update={"official_form": CONFIG.official_form.model_copy(update={"date_numerals": "arabic"})}
    )
    html = _render(warehouse, tmp_path, arabic, approval(revision=2, at="2024-05-01 08:00", number="测绩办〔2024〕9号"))
    assert _element(html, r'<p class="document-number">.*?</p>') == "测绩办〔2024〕9号（第 2 版）"
    assert _element(html, r'<div class="signature">.*?</div>') == "测试市绩效管理办公室 2024年5月1日"
    # An approval made before numbering: no 文号 line, the rest as usual.
    html = _render(warehouse, tmp_path / "old", record=approval(number=None))
    assert 'class="document-number"' not in html and '<hr class="red-rule">' in html


def _marts(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, [MARCH]).fetchall()
    finally:
        con.close()


def test_the_key_points_come_first_with_the_rankings_grades_top_and_bottom_five(warehouse: Path, draft: str) -> None:
    body = _body(draft)
    sections = re.findall(r'<section id="([^"]+)"', body)
    assert sections[0] == "key-points" and sections[1] == "summary"
    assert body.index("</header>") < body.index('<section id="key-points"') < body.index('<nav class="toc"')
    key_points = re.search(r'<section id="key-points".*?</section>', body, re.S)[0]
    counts = dict(re.findall(r'<td data-grade="([^"]+)">[^<]*<span class="num">(\d+)</span>', key_points))
    expected = dict(_marts(warehouse, "select grade, count(*) from marts.fct_rankings where period = ? group by grade"))
    assert counts == {grade: str(expected.get(grade, 0)) for grade in ("优秀", "良好", "合格", "不合格")}
    assert re.search(r'class="total">合计 <span class="num">12</span>', key_points)
    ranked = [
        d
        for (d,) in _marts(
            warehouse,
            "select department_id from marts.fct_rankings where period = ? and period_type = 'month' "
            "order by rank, department_id",
        )
    ]

    def listed(table: str) -> list[str]:
        return re.findall(
            r'data-department-id="([^"]+)"', re.search(rf'<table id="{table}".*?</table>', key_points, re.S)[0]
        )

    assert listed("key-top") == ranked[:5] and listed("key-bottom") == ranked[-5:]
    figures = re.search(r'<table id="key-figures".*?</table>', key_points, re.S)[0]
    assert re.findall(r'data-indicator="([^"]+)"', figures) == ["I1", "I2", "I3"]
    # 好评率 1.00% against 95%: a rate's gap in percentage points; 投诉率 (lower is better) meets 5 件/万件
    assert "▼ 低于目标 94.00 个百分点（未达标）" in _text(figures)
    assert "▲ 低于目标 4.00 件/万件（达标）" in _text(figures)


def test_three_to_five_findings_each_with_a_number_from_the_data(draft: str) -> None:
    findings = [
        _text(li) for li in re.findall(r"<li>.*?</li>", re.search(r'<ol id="key-findings".*?</ol>', draft, re.S)[0])
    ]
    assert 3 <= len(findings) <= 5, findings
    assert findings == [
        # 12 ranked: 优秀 1 and 良好 3 of them, 不合格 4 (D05 by its veto, D13-D15)
        "本期参与排名部门 12 个，优秀和良好 4 个（占 33.3%），不合格 4 个（占 33.3%，其中 1 个因一票否决）。",
        "综合得分最高的是市民政局（91.50 分），最低的是市测试局15（60.00 分），相差 31.50 分。",
        "本期红色预警 1 条、黄色预警 1 条；红色预警涉及 1 个部门，集中在综合得分（1 条）。",
        "有目标值的主要指标 2 项，达到目标 1 项；差距最大的是好评率 1.00%，低于目标 94.00 个百分点（目标 95.00%）。",
        "名次上升最多的是市民政局（上升 2 位），下降最多的是市人力资源和社会保障局（下降 4 位）。",
    ]
    assert all(re.search(r"\d", sentence) for sentence in findings)


def test_ties_are_named_together(warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tied.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    con.execute(
        "update marts.fct_rankings set composite_score = 60.0 where period = ? and department_id = 'D14'", [MARCH]
    )
    con.execute("delete from marts.fct_warnings")
    con.close()
    html = _render(copy, tmp_path / "out")
    findings = _text(re.search(r'<ol id="key-findings".*?</ol>', html, re.S)[0])
    assert "最低的是市测试局14、市测试局15（并列，60.00 分）" in findings
    assert "本期红色预警、黄色预警均为 0 条。" in findings


def test_with_the_form_off_the_edition_has_its_plain_header_and_no_key_points(warehouse: Path, tmp_path: Path) -> None:
    html = _render(warehouse, tmp_path, PLAIN)
    assert '<p class="issuer">测试市绩效办</p>' in html
    for official in ("official-masthead", "red-rule", "key-points", "document-number", "signature", "colophon"):
        assert official not in html, official
    assert "--official-red" not in html and '"第 " counter(page) " 页"' in html
    # the same bytes as a configuration without the block at all
    without = BulletinConfig.model_validate(
        {"title": "政府部门绩效通报", "issuer": "测试市绩效办", "headline": ["I1", "I2", "I3"]}
    )
    assert _render(warehouse, tmp_path / "without", without) == html


@pytest.fixture
def ledgered(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.conftest import record_as_built

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    record_as_built(warehouse, tmp_path / "home")
    return warehouse


def test_approve_dates_the_signature_from_the_approval_record(ledgered: Path, tmp_path: Path) -> None:
    from pipelines.publish.editions import approve

    con = duckdb.connect(str(ledgered), read_only=True)
    try:
        published = approve(con, MONTH, tmp_path / "published", "李四", dt.datetime(2024, 4, 8, 9, 30), config=CONFIG)
    finally:
        con.close()
    html = published.html.read_text(encoding="utf-8")
    assert _element(html, r'<div class="signature">.*?</div>') == "测试市绩效管理办公室 二〇二四年四月八日"
    assert "（审定后填写）" not in html and "草稿" not in _body(html).split("<footer>")[0]


def test_the_official_stylesheet_is_part_of_what_an_approval_compares(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.publish import editions

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        before = editions.mart_hashes(con, MONTH, CONFIG, build_marts={})["templates"]
        changed = tmp_path / "official_form.css"
        changed.write_text(editions.OFFICIAL_FORM_STYLESHEET.read_text(encoding="utf-8") + "/* x */", encoding="utf-8")
        monkeypatch.setattr(editions, "OFFICIAL_FORM_STYLESHEET", changed)
        after = editions.mart_hashes(con, MONTH, CONFIG, build_marts={})["templates"]
    finally:
        con.close()
    assert before != after
