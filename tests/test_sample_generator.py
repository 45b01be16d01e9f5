"""Tests for the seeded sample-city generator (pipelines/sample/generator.py).

Generation writes real files into tmp_path and every assertion reads them
back from disk.  The main fixture covers March-September 2025: 市数据局 starts in
April and 市粮食和物资储备局 is merged after August, so both edges are inside.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

from pipelines.sample import generator
from pipelines.sample.generator import RATING_LEVELS, generate_city

REGISTRY = Path(__file__).resolve().parents[1] / "sources" / "reference" / "departments.yaml"
RANGE = {"first_month": "2025-03", "last_month": "2025-09"}
MONTHS = [f"2025{m:02d}" for m in range(3, 10)]
SEED = 7
TRANSACTIONS = 12_345


# --------------------------------------------------------------------------
# Fixtures and readers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> dict[str, dict]:
    entries = yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))["departments"]
    return {entry["id"]: entry for entry in entries}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    calls: list[tuple[str, int]] = []
    summary = generate_city(
        out,
        departments_yaml=REGISTRY,
        seed=SEED,
        transactions=TRANSACTIONS,
        progress=lambda label, rows: calls.append((label, rows)),
        **RANGE,
    )
    return out, summary, calls


@pytest.fixture(scope="module")
def tables(city) -> dict[str, pd.DataFrame]:
    """Every source read back from disk, with the month (or quarter) of each row."""
    out, _, _ = city
    return {
        "service_transactions": _read_csvs(out / "service_transactions", "gbk"),
        "hotline_complaints": _read_csvs(out / "hotline_complaints", "utf-8-sig"),
        "projects": _read_csvs(out / "projects", "utf-8"),
        "adjustments": _read_csvs(out / "adjustments", "gbk"),
        "surveys": _read_xlsx(out / "surveys", "问卷结果", header_row=3),
        "budget": _read_xlsx(out / "budget", "执行情况", header_row=3),
        "leader_reviews": _read_xlsx(out / "leader_reviews", "领导点评", header_row=1),
    }


def _with_period(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Tag rows with the file's period (202503 or 2025Q2) and its last month (YYYYMM)."""
    period = path.stem.split("_")[-1]
    last_month = period if period.isdigit() else f"{period[:4]}{int(period[-1]) * 3:02d}"
    return frame.assign(period=period, month=last_month)


def _read_csvs(folder: Path, encoding: str) -> pd.DataFrame:
    frames = [
        _with_period(pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False), path)
        for path in sorted(folder.glob("*.csv"))
    ]
    return pd.concat(frames, ignore_index=True)


def _read_xlsx(folder: Path, sheet: str, header_row: int) -> pd.DataFrame:
    """Data rows below ``header_row`` up to the first empty row."""
    frames = []
    for path in sorted(folder.glob("*.xlsx")):
        workbook = load_workbook(path, read_only=True)
        rows = list(workbook[sheet].iter_rows(values_only=True))
        workbook.close()
        header, data = rows[header_row - 1], []
        for row in rows[header_row:]:
            if all(value is None for value in row):
                break
            data.append(list(row) + [None] * (len(header) - len(row)))  # trailing empty cells are not stored
        frames.append(_with_period(pd.DataFrame(data, columns=header), path))
    return pd.concat(frames, ignore_index=True)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _active(entry: dict, yyyymm: str) -> bool:
    first = dt.date(int(yyyymm[:4]), int(yyyymm[4:]), 1)
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return entry["valid_from"] <= last and (entry["valid_to"] is None or entry["valid_to"] >= first)


# --------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(city, tmp_path):
    out, summary, _ = city
    generate_city(tmp_path, departments_yaml=REGISTRY, seed=SEED, transactions=TRANSACTIONS, **RANGE)
    first, second = _hashes(out), _hashes(tmp_path)
    assert first == second
    assert len(first) == len(summary.files) == 6 * len(MONTHS) + 2  # six monthly sources, 2025Q2 and Q3


def test_different_seed_changes_every_file(tmp_path):
    one_month = {"first_month": "2025-05", "last_month": "2025-05", "transactions": 2_000}
    generate_city(tmp_path / "a", departments_yaml=REGISTRY, seed=1, **one_month)
    generate_city(tmp_path / "b", departments_yaml=REGISTRY, seed=2, **one_month)
    a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == 6
    assert all(a[name] != b[name] for name in a)


def test_xlsx_archives_carry_fixed_dates_not_the_clock(city):
    _out, summary, _ = city
    workbooks = [path for path in summary.files if path.suffix == ".xlsx"]
    assert workbooks
    for path in workbooks:
        with zipfile.ZipFile(path) as archive:
            stamps = {entry.date_time for entry in archive.infolist()}
            core = archive.read("docProps/core.xml").decode()
        assert len(stamps) == 1
        stamp = dt.datetime(*stamps.pop())
        # Produced at 09:00 on the first day after the month (or quarter) it covers.
        assert (stamp.day, stamp.hour, stamp.minute) == (1, 9, 0)
        assert stamp.date() <= dt.date(2025, 10, 1)
        assert core.count(stamp.strftime("%Y-%m-%dT%H:%M:%S")) == 2  # created and modified


# --------------------------------------------------------------------------
# Coverage of departments over time
# --------------------------------------------------------------------------


def test_every_active_department_has_cases_each_month_except_planned_gaps(city, tables, registry):
    _, summary, _ = city
    transactions = tables["service_transactions"]
    planned_gaps = 0
    for yyyymm in MONTHS:
        seen = set(transactions.loc[transactions["period"] == yyyymm, "部门编码"])
        gaps = {d for d, sources in summary.gaps.items() if yyyymm in sources.get("service_transactions", [])}
        planned_gaps += len(gaps)
        expected = {d for d, entry in registry.items() if _active(entry, yyyymm)} - gaps
        assert seen == expected, yyyymm
    assert planned_gaps >= 1  # the gap case is really exercised


def test_planned_gaps_are_really_missing_from_their_sources(city, tables, registry):
    _, summary, _ = city
    assert sorted(p for p in summary.profiles.values() if p == "gaps") == ["gaps"] * 3
    names = {d: entry["name"] for d, entry in registry.items()}
    for department, sources in summary.gaps.items():
        for source, months in sources.items():
            table = tables[source]
            column = "被评部门" if source == "surveys" else "部门编码"
            key = names[department] if source == "surveys" else department
            assert not ((table[column] == key) & table["period"].isin(months)).any(), (department, source)


def test_merged_department_stops_and_new_department_starts(tables, registry):
    merged = next(d for d, entry in registry.items() if entry.get("merged_into"))
    absorbing = registry[merged]["merged_into"]
    new = next(d for d, entry in registry.items() if dt.date(2025, 3, 1) < entry["valid_from"] <= dt.date(2025, 9, 30))
    assert (registry[merged]["name"], registry[absorbing]["name"]) == ("市粮食和物资储备局", "市发展和改革委员会")
    assert registry[new]["valid_from"] == dt.date(2025, 4, 1)
    by_name = {entry["name"]: d for d, entry in registry.items()}

    for source, table in tables.items():
        ids = table["部门编码"] if "部门编码" in table else table.iloc[:, 1].map(by_name)
        assert (table.loc[ids == merged, "month"] <= "202508").all(), source
        assert (table.loc[ids == new, "month"] >= "202504").all(), source

    transactions = tables["service_transactions"]
    moments = pd.to_datetime(transactions["受理时间"])
    assert moments[transactions["部门编码"] == merged].max() <= pd.Timestamp("2025-08-31 23:59:59")
    assert moments[transactions["部门编码"] == new].min() >= pd.Timestamp("2025-04-01")
    # From September the absorbing department handles the merged department's items.
    merged_items = set(transactions.loc[transactions["部门编码"] == merged, "事项名称"])
    after = transactions[(transactions["部门编码"] == absorbing) & (transactions["period"] >= "202509")]
    before = transactions[(transactions["部门编码"] == absorbing) & (transactions["period"] < "202509")]
    assert merged_items & set(after["事项名称"])
    assert not merged_items & set(before["事项名称"])


# --------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["service_transactions", "adjustments"])
def test_gbk_files_decode_as_gbk_and_not_as_utf8(city, folder):
    out, _, _ = city
    paths = sorted((out / folder).glob("*.csv"))
    assert len(paths) == len(MONTHS)
    for path in paths:
        raw = path.read_bytes()
        assert raw.decode("gbk").startswith("办件编号" if folder == "service_transactions" else "部门编码")
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")


def test_line_endings_and_byte_order_marks(city):
    out, _, _ = city
    transactions = (out / "service_transactions" / "好差评明细_202505.csv").read_bytes()
    assert transactions.count(b"\r\n") == transactions.count(b"\n") > 1
    hotline = (out / "hotline_complaints" / "12345工单_202505.csv").read_bytes()
    assert hotline.startswith("\ufeff工单编号".encode("utf-8")) and b"\r" not in hotline
    projects = (out / "projects" / "重点项目_202505.csv").read_bytes()
    assert projects.startswith("项目编号".encode()) and b"\r" not in projects


def test_budget_data_is_on_second_sheet_between_title_and_notes_rows(city, tables):
    out, _, _ = city
    workbook = load_workbook(out / "budget" / "预算执行_202503.xlsx", read_only=True)
    assert workbook.sheetnames == ["说明", "执行情况"]
    rows = [list(row) for row in workbook["执行情况"].iter_rows(values_only=True)]
    workbook.close()
    assert rows[0][0] == "2025年3月部门预算执行情况表"
    assert rows[1][0] == "单位：万元"
    assert rows[2] == ["部门编码", "部门名称", "月份", "预算数", "执行数"]
    assert all(value is None for value in rows[-2])
    assert str(rows[-1][0]).startswith("注：")
    data = rows[3:-2]
    assert data and all(row[0].startswith("D") and row[2] == "2025年3月" for row in data)
    assert all(round(row[3], 2) == row[3] and round(row[4], 2) == row[4] and row[3] > 0 for row in data)


def test_survey_workbook_layout(city):
    out, _, _ = city
    workbook = load_workbook(out / "surveys" / "万人评机关_202504.xlsx")
    sheet = workbook["问卷结果"]
    assert sheet["A1"].value == "2025年4月“万人评机关”问卷结果汇总"
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:H1"]
    assert all(cell.value is None for cell in sheet[2])
    assert [cell.value for cell in sheet[3]] == generator.SURVEY_COLUMNS


# --------------------------------------------------------------------------
# Row counts, totals and content validity
# --------------------------------------------------------------------------


def test_summary_matches_files_on_disk(city, tables):
    out, summary, calls = city
    assert {path for path in out.rglob("*") if path.is_file()} == set(summary.files)
    assert summary.rows == {source: len(table) for source, table in tables.items()}
    assert summary.departments == 68
    # progress reports the final running count of every source.
    final = {}
    for label, rows in calls:
        final[label] = rows
    assert final == summary.rows


def test_requested_transaction_total_is_met_exactly(city, tables):
    _, summary, _ = city
    assert summary.rows["service_transactions"] == TRANSACTIONS == len(tables["service_transactions"])


def test_transactions_are_internally_valid(tables):
    cases = tables["service_transactions"]
    assert cases["办件编号"].is_unique
    assert (cases["办件编号"].str[2:8] == cases["period"]).all()
    received = pd.to_datetime(cases["受理时间"], format="%Y-%m-%d %H:%M:%S")
    assert (received.dt.strftime("%Y%m") == cases["period"]).all()
    closed = cases["办结时间"] != ""
    finished = pd.to_datetime(cases.loc[closed, "办结时间"], format="%Y-%m-%d %H:%M:%S")
    assert (finished > received[closed]).all()
    assert 0.002 < (~closed).mean() < 0.03 and (cases.loc[~closed, "period"] == MONTHS[-1]).mean() > 0.8
    assert cases["评价等级"].isin(RATING_LEVELS).all()
    assert 0.15 < (cases["评价等级"] == "").mean() < 0.3
    assert (cases.loc[~closed, "评价等级"] == "").all()
    assert cases["办理渠道"].isin(["网办", "窗口"]).all()
    limit, required, submitted = (cases[c].astype(int) for c in ("承诺时限", "应交材料数", "实交材料数"))
    assert limit.between(1, 20).all() and required.between(1, 12).all()
    assert ((submitted >= 1) & (submitted <= required)).all()
    assert (cases.groupby(["部门编码", "事项名称"])["承诺时限"].nunique() == 1).all()

    bad = cases["评价等级"].isin(["不满意", "非常不满意"])
    follow_up = ["是否整改", "整改时间", "是否申诉", "申诉结果"]
    assert (cases.loc[~bad, follow_up] == "").all().all()
    assert cases.loc[bad, "是否整改"].isin(["是", "否"]).all() and cases.loc[bad, "是否申诉"].isin(["是", "否"]).all()
    rectified = cases["是否整改"] == "是"
    assert ((cases["整改时间"] != "") == rectified).all()
    assert (pd.to_datetime(cases.loc[rectified, "整改时间"]) > pd.to_datetime(cases.loc[rectified, "办结时间"])).all()
    appealed = cases["是否申诉"] == "是"
    assert cases.loc[appealed, "申诉结果"].isin(["申诉成立", "申诉不成立"]).all()
    assert (cases.loc[~appealed, "申诉结果"] == "").all()


def test_poor_performers_really_perform_worse(city, tables):
    _, summary, _ = city
    cases = tables["service_transactions"]
    profile = cases["部门编码"].map(summary.profiles)
    bad = cases["评价等级"].isin(["不满意", "非常不满意"])
    assert bad[profile == "poor"].mean() > 2 * bad[profile == "stable"].mean()


def test_other_sources_are_internally_valid(tables, registry):
    names = {entry["name"] for entry in registry.values()}
    hotline = tables["hotline_complaints"]
    assert hotline["工单编号"].is_unique and hotline["承办部门"].isin(names).all()
    assert hotline["诉求类别"].isin(["咨询", "投诉", "求助", "建议", "举报"]).all()
    assert hotline["是否属实"].isin(["属实", "部分属实", "不属实"]).all()
    closed = hotline["办结时间"] != ""
    assert (pd.to_datetime(hotline.loc[closed, "办结时间"]) > pd.to_datetime(hotline.loc[closed, "受理时间"])).all()

    surveys = tables["surveys"]
    assert surveys["被评部门"].isin(names).all() and surveys["问卷编号"].is_unique
    scores = surveys[["服务态度", "办事效率", "廉洁自律", "总体满意度"]]
    assert ((scores >= 0) & (scores <= 100)).all().all()
    per_department = surveys.groupby(["被评部门", "period"]).size()
    assert per_department.max() <= 120 and (per_department < 10).any()
    assert per_department[per_department >= 10].min() >= 20

    projects = tables["projects"]
    assert projects.groupby(["部门编码", "period"]).size().max() <= 4
    assert (projects["计划完成日期"].str[:7].str.replace("-", "") == projects["period"]).all()

    adjustments = tables["adjustments"]
    assert (adjustments["类型"] == "一票否决").sum() == 1
    veto = adjustments[adjustments["类型"] == "一票否决"].iloc[0]
    assert veto["分值"] == ""
    points = adjustments.loc[adjustments["类型"] != "一票否决"]
    values = points["分值"].astype(float)
    assert ((values > 0) == (points["类型"] == "加分")).all()
    assert adjustments["依据文号"].str.fullmatch(r"市\S+〔20\d\d〕\d+号").all()

    reviews = tables["leader_reviews"]
    assert sorted(reviews["period"].unique()) == ["2025Q2", "2025Q3"]
    assert reviews["评分"].between(0, 100).all()


def test_veto_goes_to_a_poor_performer(city, tables):
    _, summary, _ = city
    adjustments = tables["adjustments"]
    vetoed = adjustments.loc[adjustments["类型"] == "一票否决", "部门编码"].item()
    assert summary.profiles[vetoed] == "poor"


# --------------------------------------------------------------------------
# Streaming and argument checks
# --------------------------------------------------------------------------


def test_small_chunks_split_days_and_keep_cases_in_time_order(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK_ROWS", 40)
    summary = generate_city(
        tmp_path, departments_yaml=REGISTRY, seed=3, transactions=9_001, first_month="2025-06", last_month="2025-06"
    )
    cases = pd.read_csv(tmp_path / "service_transactions" / "好差评明细_202506.csv", encoding="gbk", dtype=str)
    assert len(cases) == summary.rows["service_transactions"] == 9_001
    assert cases["办件编号"].is_unique
    assert cases["受理时间"].is_monotonic_increasing
    assert list(cases["办件编号"]) == sorted(cases["办件编号"])


def test_too_few_transactions_for_every_department_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least"):
        generate_city(tmp_path, departments_yaml=REGISTRY, transactions=10, first_month="2025-06", last_month="2025-06")
