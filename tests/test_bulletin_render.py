"""Monthly bulletin renderer: a small hand-made marts database in, one offline HTML file out."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.bulletin import render_monthly_bulletin
from pipelines.publish.wording import format_rank_change

MARCH = datetime.date(2024, 3, 1)
FEBRUARY = datetime.date(2024, 2, 1)
SCRIPT_MESSAGE = "群众留言：<script>alert(1)</script> 办理超时"

SCHEMA = """
CREATE SCHEMA marts;
CREATE TABLE marts.dim_department(department_id VARCHAR, department_name VARCHAR, peer_group VARCHAR,
    parent_id VARCHAR, valid_from DATE, valid_to DATE);
CREATE TABLE marts.dim_indicator(indicator_id VARCHAR, indicator_name VARCHAR, dimension VARCHAR,
    direction VARCHAR, weight DOUBLE, unit VARCHAR, normalisation VARCHAR, target DOUBLE,
    catalogue_version VARCHAR, min_obs INTEGER DEFAULT 1, outlier_method VARCHAR DEFAULT 'skew_kurtosis',
    missing_method VARCHAR DEFAULT 'reweight', max_lookback INTEGER DEFAULT 3, change_basis VARCHAR);
CREATE TABLE marts.dim_catalogue_node(node_id VARCHAR, node_name VARCHAR, parent_id VARCHAR,
    level INTEGER, weight DOUBLE, aggregation VARCHAR, catalogue_version VARCHAR);
CREATE TABLE marts.fct_indicator_values(period DATE, period_type VARCHAR, department_id VARCHAR,
    indicator_id VARCHAR, raw_value DOUBLE, n_obs BIGINT, score DOUBLE, is_imputed BOOLEAN,
    is_treated BOOLEAN DEFAULT FALSE, meets_min_obs BOOLEAN DEFAULT TRUE, imputation VARCHAR,
    missing_reason VARCHAR, n_unknown BIGINT DEFAULT 0);
CREATE TABLE marts.fct_department_scores(period DATE, period_type VARCHAR, department_id VARCHAR,
    level INTEGER, dimension VARCHAR, score DOUBLE, rank INTEGER);
CREATE TABLE marts.fct_rankings(period DATE, period_type VARCHAR, department_id VARCHAR,
    composite_score DOUBLE, rank INTEGER, peer_group_rank INTEGER, rank_change INTEGER,
    rank_p05 DOUBLE, rank_p95 DOUBLE, grade VARCHAR, peer_group VARCHAR, bonus_points DOUBLE,
    veto_reason VARCHAR, base_score DOUBLE, bottom_streak INTEGER DEFAULT 0,
    bottom_flag BOOLEAN DEFAULT FALSE, n_ranked INTEGER, catalogue_version VARCHAR DEFAULT 'v1');
CREATE TABLE marts.fct_warnings(period DATE, period_type VARCHAR, department_id VARCHAR,
    indicator_id VARCHAR, level VARCHAR, message VARCHAR);
CREATE TABLE marts.fct_data_quality(period DATE, source VARCHAR, file_name VARCHAR, file_hash VARCHAR,
    rows_read BIGINT, rows_accepted BIGINT, rows_quarantined BIGINT, check_name VARCHAR,
    severity VARCHAR, passed BOOLEAN, details VARCHAR);
"""

DEPARTMENTS = [
    ("D01", "市发展和改革委员会", "综合管理类", None, "2020-01-01", None),
    ("D02", "市财政局", "综合管理类", None, "2020-01-01", None),
    ("D03", "市审计局", "综合管理类", None, "2020-01-01", None),
    ("D04", "市民政局", "社会服务类", None, "2020-01-01", None),
    ("D05", "市人力资源和社会保障局", "社会服务类", None, "2020-01-01", None),
    # Renamed in 机构改革: the March bulletin must use the name in force in March.
    ("D06", "市卫生局", "社会服务类", None, "2020-01-01", "2024-02-29"),
    ("D06", "市卫生健康委员会", "社会服务类", None, "2024-03-01", None),
    ("D07", "市旧机构办公室", "社会服务类", None, "2020-01-01", "2024-02-29"),
]

INDICATORS = [
    ("I1", "好评率", "service", "higher", 0.6, "%", "min_max", 95.0, "v1", "points"),
    ("I2", "投诉率", "service", "lower", 0.4, "件/万件", "distance_to_target", 5.0, "v1", "relative"),
    ("I3", "预算执行偏差", "efficiency", "lower", 1.0, None, "z_score", None, "v1", "relative"),
]

NODES = [
    ("composite", "综合得分", None, 0, 1.0, "weighted_mean", "v1"),
    ("service", "服务质量", "composite", 1, 0.6, "weighted_mean", "v1"),
    ("efficiency", "运行效能", "composite", 1, 0.4, "weighted_mean", "v1"),
]

# (department, composite, rank, peer_group_rank, rank_change, grade, peer_group, bonus, veto)
MARCH_RANKINGS = [
    ("D04", 91.5, 1, 1, 2, "优秀", "社会服务类", 2.0, None),
    ("D02", 88.25, 2, 1, -1, "良好", "综合管理类", 0.0, None),
    ("D01", 80.0, 3, 2, 0, "良好", "综合管理类", 0.0, None),
    ("D03", 80.0, 3, 2, None, "良好", "综合管理类", 0.0, None),  # tie: min rank, then by id
    ("D06", 72.0, 5, 2, 1, "合格", "社会服务类", -1.5, None),
    ("D05", 85.0, 6, 3, -4, "不合格", "社会服务类", 0.0, "发生重大安全生产责任事故"),
]
FEBRUARY_RANKINGS = [
    ("D02", 90.0, 1, 1, None, "优秀", "综合管理类", 0.0, None),
    ("D05", 86.0, 2, 1, None, "良好", "社会服务类", 0.0, None),
    ("D04", 85.0, 3, 2, None, "良好", "社会服务类", 0.0, None),
    ("D01", 80.0, 3, 2, None, "良好", "综合管理类", 0.0, None),
    ("D07", 75.0, 5, 3, None, "合格", "社会服务类", 0.0, None),
    ("D06", 70.0, 6, 4, None, "合格", "社会服务类", 0.0, None),
]


def _build_marts(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    con.executemany("INSERT INTO marts.dim_department VALUES (?, ?, ?, ?, ?, ?)", DEPARTMENTS)
    con.executemany(
        "INSERT INTO marts.dim_indicator (indicator_id, indicator_name, dimension, direction, weight, unit, "
        "normalisation, target, catalogue_version, change_basis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        INDICATORS,
    )
    con.executemany("INSERT INTO marts.dim_catalogue_node VALUES (?, ?, ?, ?, ?, ?, ?)", NODES)
    for period, rankings in ((FEBRUARY, FEBRUARY_RANKINGS), (MARCH, MARCH_RANKINGS)):
        con.executemany(
            "INSERT INTO marts.fct_rankings (period, period_type, department_id, composite_score, rank, "
            "peer_group_rank, rank_change, grade, peer_group, bonus_points, veto_reason) "
            "VALUES (?, 'month', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(period, *row) for row in rankings],
        )
        for department_id, composite, *_ in rankings:
            con.executemany(
                "INSERT INTO marts.fct_department_scores VALUES (?, 'month', ?, ?, ?, ?, NULL)",
                [
                    (period, department_id, 0, "composite", composite),
                    (period, department_id, 1, "service", composite + 1),
                    (period, department_id, 1, "efficiency", composite - 1),
                ],
            )
            con.executemany(
                "INSERT INTO marts.fct_indicator_values (period, period_type, department_id, indicator_id, "
                "raw_value, n_obs, score, is_imputed) VALUES (?, 'month', ?, ?, 1.0, 10, ?, FALSE)",
                [(period, department_id, indicator[0], composite) for indicator in INDICATORS],
            )
    con.executemany(
        "INSERT INTO marts.fct_warnings VALUES (?, 'month', ?, ?, ?, ?)",
        [
            (MARCH, "D06", "I2", "amber", SCRIPT_MESSAGE),
            (MARCH, "D05", "composite", "red", "一票否决，综合等次为不合格"),
            (FEBRUARY, "D07", "I1", "red", "二月预警，不应出现在三月通报"),
        ],
    )
    con.executemany(
        "INSERT INTO marts.fct_data_quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                MARCH,
                "service_transactions",
                "好差评_2024-03.csv",
                "a1b2c3d4e5f6a7b8",
                1000,
                990,
                10,
                "not_null_case_id",
                "error",
                True,
                "ok",
            ),
            (
                MARCH,
                "service_transactions",
                "好差评_2024-03.csv",
                "a1b2c3d4e5f6a7b8",
                1000,
                990,
                10,
                "rating_in_range",
                "warning",
                False,
                "不符合 3 行",
            ),
            (
                MARCH,
                "hotline",
                "12345工单_2024-03.xlsx",
                "ffeeddccbbaa0099",
                200,
                200,
                0,
                "not_null_department",
                "error",
                True,
                "ok",
            ),
            (
                MARCH,
                "service_transactions",
                None,
                None,
                0,
                0,
                0,
                "departments_reported",
                "warning",
                False,
                "截止 2024-04-05: 1 个部门逾期报送: 逾期2天 D03",
            ),
            (
                FEBRUARY,
                "budget",
                "预算执行_2024-02.xlsx",
                "0123456789abcdef",
                50,
                40,
                10,
                "plan_not_negative",
                "error",
                False,
                "不符合 10 行",
            ),
        ],
    )
    con.close()


@pytest.fixture(scope="module")
def marts_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "govperf.duckdb"
    _build_marts(path)
    return path


@pytest.fixture
def con(marts_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(marts_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture
def html(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> str:
    return render_monthly_bulletin(con, MARCH, tmp_path / "out").read_text(encoding="utf-8")


class _BulletinParser(HTMLParser):
    """Collects table rows (cell texts) by table id, and all ids and in-page hrefs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.table_attrs: dict[str, dict[str, str | None]] = {}
        self.ids: list[str] = []
        self.fragment_links: list[str] = []
        self._table: str | None = None
        self._in_tbody = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"])  # type: ignore[arg-type]
        if tag == "a" and (attributes.get("href") or "").startswith("#"):
            self.fragment_links.append(attributes["href"][1:])  # type: ignore[index]
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = []
            self.table_attrs[self._table] = attributes
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._table and self._in_tbody:
            self.tables[self._table].append([])
        elif tag == "td" and self._table and self._in_tbody:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _BulletinParser:
    parser = _BulletinParser()
    parser.feed(html)
    parser.close()
    return parser


def test_writes_named_file_with_title_and_draft_marker(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    out_dir = tmp_path / "nested" / "out"
    path = render_monthly_bulletin(con, MARCH, out_dir)
    assert path == out_dir / "bulletin_2024-03.html"
    html = path.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    assert "<title>2024年3月政府部门绩效通报</title>" in html
    assert "草稿" in html
    assert '<strong class="ranked-count">6</strong>' in html


def test_composite_ranking_has_one_row_per_department_in_rank_order(html: str) -> None:
    rows = _parse(html).tables["ranking-composite"]
    assert [(row[0], row[1]) for row in rows] == [
        ("1", "市民政局"),
        ("2", "市财政局"),
        ("3", "市发展和改革委员会"),
        ("3", "市审计局"),
        ("5", "市卫生健康委员会"),  # name in force in March, not the old one
        ("6", "市人力资源和社会保障局"),
    ]
    by_name = {row[1]: row for row in rows}
    # rank, name, group, composite, the two dimensions (by weight), bonus, grade, change, band
    assert by_name["市民政局"][2:] == ["社会服务类", "91.50", "92.50", "90.50", "+2.00", "优秀", "↑2", "—"]
    assert by_name["市财政局"][3:] == ["88.25", "89.25", "87.25", "", "良好", "↓1", "—"]
    assert by_name["市发展和改革委员会"][-2] == "—"
    assert by_name["市审计局"][-2] == "新"
    assert by_name["市卫生健康委员会"][6] == "-1.50"
    assert "市旧机构办公室" not in html  # ranked in February only


def test_veto_reason_shown_next_to_grade(html: str) -> None:
    rows = _parse(html).tables["ranking-composite"]
    vetoed = next(row for row in rows if row[1] == "市人力资源和社会保障局")
    assert vetoed[7] == "不合格 （✖ 一票否决：发生重大安全生产责任事故）"


def test_one_table_per_peer_group_ordered_by_group_rank(html: str) -> None:
    parser = _parse(html)
    groups = {
        parser.table_attrs[table_id]["data-peer-group"]: rows
        for table_id, rows in parser.tables.items()
        if table_id.startswith("ranking-group-")
    }
    assert set(groups) == {"综合管理类", "社会服务类"}
    assert [(row[0], row[1]) for row in groups["综合管理类"]] == [
        ("1", "市财政局"),
        ("2", "市发展和改革委员会"),
        ("2", "市审计局"),
    ]
    assert [(row[0], row[1]) for row in groups["社会服务类"]] == [
        ("1", "市民政局"),
        ("2", "市卫生健康委员会"),
        ("3", "市人力资源和社会保障局"),
    ]


def test_warnings_are_grouped_by_department_most_red_first(html: str) -> None:
    """One row per department (red column, then amber), the reason in each item's title
    (and on the department page), never the flat list of every warning."""
    rows = _parse(html).tables["warnings-table"]
    assert rows == [
        ["市人力资源和社会保障局", "综合得分", ""],
        ["市卫生健康委员会", "", "投诉率"],
    ]
    assert 'title="一票否决，综合等次为不合格"' in html
    assert "二月预警" not in html


def test_data_values_are_escaped(html: str) -> None:
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_external_references(html: str) -> None:
    # An inline SVG names its XML namespaces by URI; they are names, never fetched.
    lowered = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html.lower())
    for forbidden in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert forbidden not in lowered, forbidden
    assert '"Noto Sans CJK SC"' in html  # CSS inlined unescaped
    assert "thead { display: table-header-group; }" in html


def test_every_in_page_link_resolves(html: str) -> None:
    parser = _parse(html)
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    ranking_links = {link for link in parser.fragment_links if link.startswith("rank-")}
    assert ranking_links == {f"rank-D0{n}" for n in range(1, 7)}  # peer-group ranks, warnings link back
    assert set(parser.fragment_links) <= set(parser.ids)


def test_a_page_per_department_linked_both_ways(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    edition = render_monthly_bulletin(con, MARCH, tmp_path)
    html = edition.read_text(encoding="utf-8")
    pages = sorted(p.name for p in (tmp_path / "bulletin_2024-03_departments").iterdir())
    assert pages == [f"D0{n}.html" for n in range(1, 7)]
    assert 'class="department-link" href="bulletin_2024-03_departments/D02.html"' in html
    page = (tmp_path / "bulletin_2024-03_departments" / "D02.html").read_text(encoding="utf-8")
    assert "<h1>市财政局</h1>" in page and "草稿" in page
    scorecard = _parse(page).tables["scorecard"]
    # composite, then each top-level dimension: score, rank, previous score, change
    assert scorecard == [
        ["88.25", "2", "90.00", "-1.75"],
        ["89.25", "—", "91.00", "-1.75"],
        ["87.25", "—", "89.00", "-1.75"],
    ]
    assert page.count('href="../bulletin_2024-03.html#rank-D02"') >= 5  # every number links back
    assert 'data-chart="trend"' in page


# The table's defaults for the treatment columns: min_obs 1, COINr rule, re-weighting.
TREATMENT = ["1", "偏度峰度截尾", "权重重分配"]


def test_data_quality_and_methodology(html: str) -> None:
    parser = _parse(html)
    assert [row[:6] for row in parser.tables["quality-files"]] == [
        ["hotline", "12345工单_2024-03.xlsx", "ffeeddccbbaa", "200", "200", "0"],
        ["好差评办件", "好差评_2024-03.csv", "a1b2c3d4e5f6", "1000", "990", "10"],
    ]
    assert parser.tables["quality-files"][1][6:] == ["99.0%", "1 / 2"]
    # Warnings are listed with what to act on, source-level ones (late departments) too.
    assert parser.tables["failed-checks"] == [
        ["▲ 提示性", "2024-03", "好差评办件", "好差评_2024-03.csv", "rating_in_range", "不符合 3 行"],
        [
            "▲ 提示性",
            "2024-03",
            "好差评办件",
            "（全部文件）",
            "按时报送",
            "截止 2024-04-05: 1 个部门逾期报送: 逾期2天 D03",
        ],
    ]
    assert parser.tables["indicators"] == [
        ["预算执行偏差", "运行效能", "1", "逆向（越低越好）", "—", "—", "标准分数法", *TREATMENT],
        ["好评率", "服务质量", "0.6", "正向（越高越好）", "%", "95", "极差标准化（最小-最大值）", *TREATMENT],
        ["投诉率", "服务质量", "0.4", "逆向（越低越好）", "件/万件", "5", "目标值距离法", *TREATMENT],
    ]


def test_other_month_uses_its_own_data_and_names(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    html = render_monthly_bulletin(con, FEBRUARY, tmp_path).read_text(encoding="utf-8")
    parser = _parse(html)
    assert "<h1>2024年2月政府部门绩效通报</h1>" in html
    names = [row[1] for row in parser.tables["ranking-composite"]]
    assert names[-2:] == ["市旧机构办公室", "市卫生局"]  # names in force in February
    assert "本期有 1 项阻断性检查未通过" in html
    assert parser.tables["failed-checks"] == [
        ["✖ 阻断性", "2024-02", "budget", "预算执行_2024-02.xlsx", "plan_not_negative", "不符合 10 行"]
    ]
    assert "市卫生健康委员会" not in html and "alert(1)" not in html


def test_rendering_is_byte_identical(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    first = render_monthly_bulletin(con, MARCH, tmp_path / "a").read_bytes()
    second = render_monthly_bulletin(con, MARCH, tmp_path / "b").read_bytes()
    assert first == second


def test_rejects_period_that_is_not_a_month_start(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_monthly_bulletin(con, datetime.date(2024, 3, 15), tmp_path)


def test_rank_change_filter() -> None:
    assert [format_rank_change(v) for v in (3, -2, 0, None)] == ["↑3", "↓2", "—", "新"]
