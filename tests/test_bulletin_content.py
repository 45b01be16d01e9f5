"""What an edition says, on the bulletin tests' hand-made marts with a few more rows:
the headline against target, last period and baseline; adjustments with reasons;
department pages (suppressed small samples, leader remarks); quarterly editions;
charts with one mark per department, and escaped labels."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.bulletin import render_edition
from pipelines.publish.config import BulletinConfig, Edition
from tests.test_bulletin_render import FEBRUARY, MARCH, _build_marts, _parse

JANUARY = dt.date(2024, 1, 1)
QUARTER = Edition.parse("2024-Q1")

CONFIG = BulletinConfig.model_validate(
    {
        "title": "政府部门绩效通报",
        "issuer": "测试市绩效办",
        "baseline": {"month": "2024-01", "quarter": "2023-Q4"},
        "headline": ["I1", "I2"],
        "citizen_voice": {"indicators": ["I1"], "themes": 5, "lowest": 2, "min_sample": 10},
        "movers": 2,
        "trend_months": 3,
    }
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("content") / "govperf.duckdb"
    _build_marts(path)
    con = duckdb.connect(str(path))
    # Good-review rate (I1, higher is better, target 95): March D01 90% of 30 cases and
    # D02 80% of 10 → city 87.5%; February 85% (one department); January 70% (baseline).
    con.execute("delete from marts.fct_indicator_values where indicator_id = 'I1'")
    con.executemany(
        "insert into marts.fct_indicator_values (period, period_type, department_id, indicator_id, raw_value, "
        "n_obs, score, is_imputed) values (?, 'month', ?, 'I1', ?, ?, 50, false)",
        [(MARCH, "D01", 90.0, 30), (MARCH, "D02", 80.0, 10), (FEBRUARY, "D01", 85.0, 20), (JANUARY, "D01", 70.0, 5)],
    )
    # A survey figure from too few respondents: the mart flags it; the page must not show it.
    con.execute(
        "update marts.fct_indicator_values set raw_value = 77.77, meets_min_obs = false, "
        "missing_reason = '样本不足' where period = ? and department_id = 'D03' and indicator_id = 'I2'",
        [MARCH],
    )
    # D02's I1 left 4 cases out of its sample as unknown (n_unknown): its page says so.
    con.execute(
        "update marts.fct_indicator_values set n_unknown = 4 where period = ? and department_id = 'D02' "
        "and indicator_id = 'I1'",
        [MARCH],
    )
    con.execute("""
        create table marts.fct_adjustments(period date, period_type varchar, department_id varchar, kind varchar,
            points double, reason varchar, evidence_ref varchar, file_hash varchar, source_line bigint);
        create table marts.fct_complaint_themes(period date, period_type varchar, scope varchar,
            department_id varchar, keyword varchar, mentions bigint, complaints bigint, mention_share double,
            keyword_rank bigint);
        create table marts.fct_leader_reviews(period date, period_type varchar, department_id varchar,
            score double, remarks varchar, file_hash varchar, source_line bigint);
    """)
    con.executemany(
        "insert into marts.fct_adjustments values (?, 'month', ?, ?, ?, ?, ?, 'h', 1)",
        [
            (MARCH, "D04", "bonus", 2.0, "获国务院督查激励", "国办发〔2024〕1号"),
            (MARCH, "D05", "veto", None, "发生重大安全生产责任事故", "安委〔2024〕3号"),
        ],
    )
    con.executemany(
        "insert into marts.fct_complaint_themes values (?, 'month', ?, ?, ?, ?, 8, ?, ?)",
        [
            (MARCH, "city", None, "排队", 5, 62.5, 1),
            (MARCH, "city", None, "窗口", 4, 50.0, 2),
            (MARCH, "city", None, "材料", 1, 12.5, 3),
            (MARCH, "department", "D01", "排队", 3, 75.0, 1),
            (FEBRUARY, "city", None, "系统", 2, 25.0, 1),
        ],
    )
    con.execute(
        "insert into marts.fct_leader_reviews values (?, 'quarter', 'D02', 88, ?, 'h', 2)",
        [JANUARY, "预算管理规范，<b>请</b>继续保持。"],
    )
    # The first quarter, scored from pooled data: three departments.
    con.executemany(
        "insert into marts.fct_rankings (period, period_type, department_id, composite_score, rank, peer_group_rank, "
        "rank_change, rank_p05, rank_p95, grade, peer_group, bonus_points) values (?, 'quarter', ?, ?, ?, 1, null, ?, ?, "
        "'良好', ?, 0)",
        [
            (JANUARY, "D02", 89.0, 1, 1, 2, "综合管理类"),
            (JANUARY, "D04", 86.0, 2, 1, 3, "社会服务类"),
            (JANUARY, "D01", 80.0, 3, 2, 3, "综合管理类"),
        ],
    )
    # The composite before 加减分 (fct_department_scores) differs from the ranking's: pages show the ranking's.
    con.execute(
        "update marts.fct_department_scores set score = 85 where period = ? and department_id = 'D02' "
        "and dimension = 'composite'",
        [FEBRUARY],
    )
    # Bands for March, and a department name that tries to inject markup into the chart.
    con.execute("update marts.fct_rankings set rank_p05 = rank, rank_p95 = rank + 1 where period = ?", [MARCH])
    con.execute(
        "update marts.dim_department set department_name = '市<script>x</script>局' where department_id = 'D03'"
    )
    con.close()
    return path


@pytest.fixture(scope="module")
def rendered(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("editions")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        render_edition(con, Edition.month(MARCH), out, config=CONFIG)
        render_edition(con, QUARTER, out, config=CONFIG)
    finally:
        con.close()
    return out


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_headline_against_target_last_period_and_baseline(rendered: Path) -> None:
    """A rate's changes are in percentage points: 87.5% against a target of 95% is 7.50
    个百分点 below it (not 7.9%), 85% → 87.5% is +2.50 个百分点 (not +2.9%)."""
    rows = _parse(_read(rendered / "bulletin_2024-03.html")).tables["headline-figures"]
    # value, target, vs target, previous, 环比, a year earlier, 同比, baseline, vs baseline
    assert rows[0] == [
        "87.50%",
        "95.00%",
        "▼ 低于目标 7.50 个百分点（退步）",
        "85.00%",
        "▲ +2.50 个百分点（改善）",
        "—",
        "—",
        "70.00%",
        "▲ +17.50 个百分点（改善）",
    ]
    # An amount keeps its relative change.
    assert rows[1][2].startswith(("▼ 高于目标", "▲ 低于目标", "＝")) and "个百分点" not in "".join(rows[1])


def test_changes_are_worded_in_the_indicators_terms() -> None:
    from pipelines.publish.wording import change

    online = change(61.16, 90, "higher", "points", against_target=True)
    assert online["text"] == "低于目标 28.84 个百分点" and online["sense"] == "worse"
    assert change(61.16, 48.19, "higher", "points")["short"] == "+12.97 个百分点"
    assert change(61.16, 48.19, "higher", "points")["text"] == "上升 12.97 个百分点"
    assert change(81.5, 84.7, "higher", "score")["short"] == "−3.20 分"
    hours = change(67.0, 83.03, "lower", "relative")
    assert hours["short"] == "−19.3%" and hours["sense"] == "better"
    assert change(95.004, 95.0, "higher", "points")["text"] == "持平"
    assert change(95.0, 95.0, "higher", "points", against_target=True)["text"] == "与目标持平"
    assert (
        change(5.0, 0.0, "lower", "relative") is None
        and change(5.0, 0.0, "lower", "points")["short"] == "+5.00 个百分点"
    )


def test_the_catalogue_says_how_a_change_is_worded(tmp_path: Path) -> None:
    """`change` defaults from the unit (% → points, 分 → score, else relative) and can be set."""
    from pipelines.reference import IndicatorNode

    def node(unit: str, **extra) -> IndicatorNode:
        return IndicatorNode.model_validate(
            {
                "indicator": "x",
                "name": "x",
                "weight": 1,
                "unit": unit,
                "direction": "higher",
                "normalisation": "min_max",
            }
            | extra
        )

    assert [node(u).change_basis for u in ("%", "分", "小时", "件/万件")] == ["points", "score", "relative", "relative"]
    assert node("%", change="relative").change_basis == "relative"
    with pytest.raises(ValueError, match="change"):
        node("%", change="percent")


def test_year_start_baseline_and_the_year_ago_period() -> None:
    from pipelines.publish.config import Baseline

    rule = Baseline(month="year_start", quarter="year_start")
    assert rule.for_edition(Edition.parse("2026-03")) == Edition.parse("2026-01")
    assert rule.for_edition(Edition.parse("2026-01")) is None  # January is its own year's start
    assert rule.for_edition(Edition.parse("2026-Q2")) == Edition.parse("2026-Q1")
    assert Edition.parse("2026-03").year_ago == Edition.parse("2025-03")
    assert Edition.parse("2026-Q1").year_ago == Edition.parse("2025-Q1")
    with pytest.raises(ValueError, match="neither year_start nor a month"):
        Baseline(month="start", quarter="year_start")


def test_a_rank_outside_its_band_is_marked_and_explained() -> None:
    from pipelines.publish.wording import band_outside, format_band

    assert band_outside({"rank": 44, "rank_p05": 31.2, "rank_p95": 43.4}) == "behind"
    assert band_outside({"rank": 3, "rank_p05": 4.2, "rank_p95": 9.0}) == "ahead"
    assert band_outside({"rank": 43, "rank_p05": 31.2, "rank_p95": 43.4}) is None
    assert "＊" in format_band({"rank": 44, "rank_p05": 31.2, "rank_p95": 43.4})
    assert format_band({"rank": 40, "rank_p05": 31.2, "rank_p95": 43.4}) == "31–43"


def test_adjustments_are_listed_with_their_reasons(rendered: Path) -> None:
    rows = _parse(_read(rendered / "bulletin_2024-03.html")).tables["adjustments-table"]
    assert rows == [
        ["✖ 一票否决", "市人力资源和社会保障局", "—", "发生重大安全生产责任事故", "安委〔2024〕3号"],
        ["＋ 加分", "市民政局", "+2.00", "获国务院督查激励", "国办发〔2024〕1号"],
    ]


def test_complaint_themes_city_wide(rendered: Path) -> None:
    html = _read(rendered / "bulletin_2024-03.html")
    assert _parse(html).tables["complaint-themes"] == [
        ["排队", "5", "62.5%"],
        ["窗口", "4", "50.0%"],
        ["材料", "1", "12.5%"],
    ]
    assert "本期投诉类留言 8 条" in html
    bars = re.search(r'data-chart="themes">(.*?)</figure>', html, re.S)[1]
    assert (
        sum(g.count("<path") for g in re.findall(r'<g class="mark-rect role-mark[^"]*"[^>]*>(.*?)</g>', bars, re.S))
        == 3
    )


def test_movers(rendered: Path) -> None:
    tables = _parse(_read(rendered / "bulletin_2024-03.html")).tables
    assert tables["improvers"] == [["市民政局", "1", "↑2"], ["市卫生健康委员会", "5", "↑1"]]
    assert tables["decliners"] == [["市人力资源和社会保障局", "6", "↓4"], ["市财政局", "2", "↓1"]]


def test_small_samples_are_suppressed_on_department_pages(rendered: Path) -> None:
    page = _read(rendered / "bulletin_2024-03_departments" / "D03.html")
    assert "77.77" not in page and "不予公布" in page


def test_observations_left_out_as_unknown_are_counted_beside_the_sample(rendered: Path) -> None:
    with_unknown = _read(rendered / "bulletin_2024-03_departments" / "D02.html")
    assert "另 4 件未知，未计入" in with_unknown
    assert "件未知" not in _read(rendered / "bulletin_2024-03_departments" / "D01.html")


def test_leader_remarks_on_the_department_page_are_escaped(rendered: Path) -> None:
    page = _read(rendered / "bulletin_2024-03_departments" / "D02.html")
    assert "领导点评（2024年第一季度）" in page
    assert "预算管理规范，&lt;b&gt;请&lt;/b&gt;继续保持。" in page


def test_rank_band_chart_has_one_point_and_one_rule_per_ranked_department(rendered: Path) -> None:
    html = _read(rendered / "bulletin_2024-03.html")
    figure = re.search(
        r'<figure class="chart" data-chart="rank-bands" data-plots="ranking-composite">(.*?)</figure>', html, re.S
    )[1]
    points = re.findall(r'<g class="mark-symbol role-mark[^"]*"[^>]*>(.*?)</g>', figure, re.S)
    rules = re.findall(r'<g class="mark-rule role-mark[^"]*"[^>]*>(.*?)</g>', figure, re.S)
    assert sum(g.count("<path") for g in points) == 6 and sum(g.count("<line") for g in rules) == 6
    # The injected name is drawn as text, not markup.
    assert "<script" not in html and "市&lt;script&gt;x&lt;/script&gt;局" in figure


def test_a_capped_rank_band_chart_shows_the_first_and_last_and_says_how_many_it_left_out(
    warehouse: Path, tmp_path: Path
) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        config = CONFIG.model_copy(update={"band_chart_departments": 3})
        html = _read(render_edition(con, Edition.month(MARCH), tmp_path, config=config))
    finally:
        con.close()
    figure = re.search(
        r'<figure class="chart" data-chart="rank-bands" data-plots="ranking-composite">(.*?)</figure>', html, re.S
    )[1]
    points = re.findall(r'<g class="mark-symbol role-mark[^"]*"[^>]*>(.*?)</g>', figure, re.S)
    assert sum(g.count("<path") for g in points) == 3
    ranked = list(_parse(html).tables["ranking-composite"])
    assert len(ranked) == 6  # the table still lists everyone
    caption = re.sub(r"<[^>]+>", "", re.search(r"<figcaption>(.*?)</figcaption>", figure, re.S)[1])
    assert "共 6 个部门，图中为排名最前的 1 个和最后的 2 个，其余 3 个部门的区间见上表" in caption
    # Drawn in rank order: the first ranked, then the last two.
    labels = re.findall(r"<text[^>]*>([^<]+)</text>", figure)
    names = [row[1] for row in ranked]
    shown = [label for label in labels if label in names]
    assert shown[:1] == names[:1] and set(shown[1:]) == set(names[-2:])


def test_trend_chart_draws_one_line_per_scorecard_row(rendered: Path) -> None:
    page = _read(rendered / "bulletin_2024-03_departments" / "D01.html")
    series = re.findall(r'<tr data-series="(\w+)">', page)
    assert series == ["composite", "service", "efficiency"]
    # Vega draws each series of a line mark in its own group.
    lines = re.findall(r'<g class="mark-line role-mark[^"]*"[^>]*>(.*?)</g>', page, re.S)
    assert sum(group.count("<path") for group in lines) == len(series)


def test_quarterly_edition(rendered: Path) -> None:
    html = _read(rendered / "bulletin_2024-Q1.html")
    assert "<h1>2024年第一季度政府部门绩效通报</h1>" in html and "（2024-01-01 至 2024-03-31，季度）" in html
    rows = _parse(html).tables["ranking-composite"]
    assert [row[1] for row in rows] == ["市财政局", "市民政局", "市发展和改革委员会"]
    assert sorted(p.name for p in (rendered / "bulletin_2024-Q1_departments").iterdir()) == [
        "D01.html",
        "D02.html",
        "D04.html",
    ]
    # Trend of a quarter's department: the monthly scores up to the quarter's last month.
    page = _read(rendered / "bulletin_2024-Q1_departments" / "D02.html")
    assert 'data-chart="trend"' in page and "2024-01 至 2024-03" in page


def test_draft_mark_on_every_printed_page(rendered: Path) -> None:
    for path in (rendered / "bulletin_2024-03.html", rendered / "bulletin_2024-03_departments" / "D01.html"):
        html = _read(path)
        assert '@top-right { content: "草稿 · 未经审核签发"; }' in html
        assert '@top-left { content: "2024年3月政府部门绩效通报' in html


def test_a_stale_department_page_is_removed(warehouse: Path, tmp_path: Path) -> None:
    stale = tmp_path / "bulletin_2024-Q1_departments" / "D99.html"
    stale.parent.mkdir()
    stale.write_text("old", encoding="utf-8")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        render_edition(con, QUARTER, tmp_path, config=CONFIG)
    finally:
        con.close()
    assert not stale.exists() and (tmp_path / "bulletin_2024-Q1_departments" / "D01.html").exists()


def test_config_errors_name_the_place(tmp_path: Path) -> None:
    from pipelines.publish.config import load_bulletin_config
    from pipelines.reference import ConfigError

    source = Path(__file__).resolve().parents[1] / "sources" / "reference" / "bulletin.yaml"
    shutil.copy(source, tmp_path / "bulletin.yaml")
    text = _read(tmp_path / "bulletin.yaml").replace("quarter: year_start", "quarter: 2025-05")
    (tmp_path / "bulletin.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bulletin.yaml: baseline › quarter"):
        load_bulletin_config(tmp_path)


def test_config_indicators_must_be_in_the_catalogue(tmp_path: Path) -> None:
    from pipelines.publish.config import load_bulletin_config
    from pipelines.reference import ConfigError

    reference = Path(__file__).resolve().parents[1] / "sources" / "reference"
    for name in ("bulletin.yaml", "catalogue.yaml"):
        shutil.copy(reference / name, tmp_path / name)
    assert load_bulletin_config(tmp_path, check_catalogue=True).headline  # the shipped file is consistent
    text = _read(tmp_path / "bulletin.yaml").replace("  - on_time_rate\n", "  - on_time_ratio\n")
    (tmp_path / "bulletin.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="headline: not in catalogue.yaml: on_time_ratio"):
        load_bulletin_config(tmp_path, check_catalogue=True)
    text = text.replace("  - on_time_ratio\n", "  - on_time_rate\n").replace(
        "lowest_by: good_review_rate", "lowest_by: good_reviews"
    )
    (tmp_path / "bulletin.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="citizen_voice › lowest_by: not in catalogue.yaml: good_reviews"):
        load_bulletin_config(tmp_path, check_catalogue=True)


def test_the_departments_worst_on_the_configured_indicator_are_named(warehouse: Path, tmp_path: Path) -> None:
    """Lowest first for a higher-is-better indicator, highest first for a lower-is-better
    one; a value below the minimum sample is never named; no setting, no list."""
    copy = tmp_path / "govperf.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    con.executemany(
        "update marts.fct_indicator_values set raw_value = ? where period = ? and department_id = ? "
        "and indicator_id = 'I2'",
        [(3.0, MARCH, "D01"), (7.0, MARCH, "D02"), (5.0, MARCH, "D04")],
    )
    con.execute(
        "update marts.fct_indicator_values set raw_value = 99 where period = ? and department_id = 'D03' "
        "and indicator_id = 'I2'",
        [MARCH],
    )  # below the minimum sample (see the fixture)
    texts = {}
    try:
        for lowest_by in ("I1", "I2", None):
            config = CONFIG.model_copy(
                update={"citizen_voice": CONFIG.citizen_voice.model_copy(update={"lowest_by": lowest_by})}
            )
            html = _read(render_edition(con, Edition.month(MARCH), tmp_path / str(lowest_by), config=config))
            found = re.search(r'<p id="worst-departments">(.*?)</p>', html, re.S)
            texts[lowest_by] = re.sub(r"<[^>]+>", "", found[1]) if found else None
    finally:
        con.close()
    assert texts["I1"] == "好评率最低的部门：市财政局 80.00%（样本量 10）、市发展和改革委员会 90.00%（样本量 30）。"
    # The list's own minimum sample (bulletin.yaml citizen_voice.min_sample) leaves D02's 10 cases out, and says so.
    config = CONFIG.model_copy(
        update={"citizen_voice": CONFIG.citizen_voice.model_copy(update={"lowest_by": "I1", "min_sample": 20})}
    )
    con = duckdb.connect(str(copy), read_only=True)
    try:
        html = _read(render_edition(con, Edition.month(MARCH), tmp_path / "min_sample", config=config))
    finally:
        con.close()
    found = re.sub(r"<[^>]+>", "", re.search(r'<p id="worst-departments">(.*?)</p>', html, re.S)[1])
    assert (
        found
        == "好评率最低的部门：市发展和改革委员会 90.00%（样本量 30）。另有 1 个部门样本量不足 20，数值波动大，未列入比较。"
    )
    assert texts["I2"] == "投诉率最高的部门：市财政局 7.00件/万件（样本量 10）、市民政局 5.00件/万件（样本量 10）。"
    assert texts[None] is None


@pytest.fixture
def ledgered(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose ledger records the hand-made marts as built, for the approvals below."""
    from tests.conftest import record_as_built

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    record_as_built(warehouse, tmp_path / "home")
    return warehouse


def test_a_quarterly_edition_is_approved_into_the_archive(ledgered: Path, tmp_path: Path) -> None:
    warehouse = ledgered
    from pipelines.publish.editions import approve

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        path = approve(con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 20, 9, 0), config=CONFIG).html
        month = approve(con, Edition.month(MARCH), tmp_path, "李四", dt.datetime(2024, 4, 8, 9, 0), config=CONFIG).html
    finally:
        con.close()
    assert path == tmp_path / "quarterly" / "2024-Q1" / "r1" / "bulletin_2024-Q1.html"
    assert (path.parent / "bulletin_2024-Q1_departments" / "D02.html").exists()
    assert "审核签发：李四 · 2024-04-20 09:00 · 第 1 版" in _read(path) and "草稿" not in _read(path)
    index = _parse(_read(tmp_path / "index.html")).tables["editions"]
    # Newest first; the quarter after its last month.
    assert [row[:3] for row in index] == [["2024年第一季度", "季度", "第 1 版"], ["2024年3月", "月度", "第 1 版"]]
    assert 'href="quarterly/2024-Q1/r1/bulletin_2024-Q1.html"' in _read(tmp_path / "index.html")
    assert month.exists()


def test_without_bulletin_yaml_an_edition_has_no_key_figures(warehouse: Path, tmp_path: Path) -> None:
    from pipelines.publish.config import load_bulletin_config

    config = load_bulletin_config(tmp_path)  # no bulletin.yaml here
    assert config.headline == [] and config.baseline is None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        html = _read(render_edition(con, Edition.month(MARCH), tmp_path / "out", config=config))
    finally:
        con.close()
    assert "<h1>2024年3月政府部门绩效通报</h1>" in html and 'id="headline-figures"' not in html
    assert len(_parse(html).tables["ranking-composite"]) == 6


def test_department_pages_show_the_ranking_composite_after_adjustments(rendered: Path) -> None:
    page = _read(rendered / "bulletin_2024-03_departments" / "D02.html")
    composite = _parse(page).tables["scorecard"][0]
    assert composite == ["88.25", "2", "90.00", "-1.75"]  # February's ranking score, not the base 85


def test_a_target_is_met_on_the_unrounded_value() -> None:
    from pipelines.publish.wording import change as _change
    from pipelines.publish.wording import meets_target as _meets_target

    assert _change(97.96, 98, "higher")["text"] == "持平" and _meets_target(97.96, 98, "higher") is False
    assert _meets_target(98, 98, "higher") is True and _meets_target(4.9, 5, "lower") is True
    assert _meets_target(None, 98, "higher") is None and _meets_target(90, None, "higher") is None


def test_running_header_is_plain_text(warehouse: Path, tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"title": 'A&B "通报" </style>'})
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        html = _read(render_edition(con, Edition.month(MARCH), tmp_path, config=config))
    finally:
        con.close()
    header = re.search(r"@top-left \{ content: (.*?); \}", html)[1]
    assert header == '"2024年3月A&B \\22 通报\\22  \\3c /style\\3e "'
    assert '</style>"' not in html


def test_a_failed_approval_leaves_nothing_behind(ledgered: Path, tmp_path: Path, monkeypatch) -> None:
    warehouse = ledgered
    from pipelines.publish import editions

    def broken(*args, **kwargs):
        raise OSError("disk full")

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(editions, "render_edition", broken)
            with pytest.raises(OSError):
                editions.approve(con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 20), config=CONFIG)
        assert list((tmp_path / "quarterly" / "2024-Q1").iterdir()) == []
        path = editions.approve(con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 20), config=CONFIG).html
    finally:
        con.close()
    assert path.parent.name == "r1" and (path.parent / "manifest.json").exists()


def test_a_changed_setting_makes_a_new_revision(ledgered: Path, tmp_path: Path) -> None:
    warehouse = ledgered
    from pipelines.publish.editions import PublicationRefused, approve

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        approve(con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 20), config=CONFIG)
        with pytest.raises(PublicationRefused, match="nothing changed"):
            approve(con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 21), config=CONFIG)
        renamed = CONFIG.model_copy(update={"issuer": "测试市人民政府办公室"})
        second = approve(
            con, QUARTER, tmp_path, "李四", dt.datetime(2024, 4, 21), note="更正发文机关", config=renamed
        ).html
    finally:
        con.close()
    manifest = json.loads((second.parent / "manifest.json").read_text(encoding="utf-8"))
    assert second.parent.name == "r2" and manifest["changed_marts"] == ["bulletin.yaml"]
