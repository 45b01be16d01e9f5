"""`govperf explain` and the evidence marts, on one tiny city run through the real
pipeline (shared by the module): a bulletin number reached to its archive lines by
the command alone and recounted from the raw inbox file, every source explained,
--rows masked, the quarantine mart, the dbt evidence test, the department pages."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.sample.generator import generate_city
from pipelines.settings import DBT_PROJECT_DIR, PROJECT_ROOT

pytestmark = pytest.mark.slow

GOVPERF = str(Path(os.environ.get("VIRTUAL_ENV", PROJECT_ROOT / ".venv")) / "bin" / "govperf")
DBT = str(Path(GOVPERF).with_name("dbt"))
MONTH, YYYYMM = "2025-08", "202508"
DEPARTMENT = "D001"
MOBILE, ID_NUMBER = "13812345678", "44030519880715661X"
COMMENT = f"态度很好，电话{MOBILE}，身份证{ID_NUMBER}"
RATINGS = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}


def _append_gbk(path: Path, lines: list[str]) -> None:
    mtime = path.stat().st_mtime  # the delivery time: keep it
    text = path.read_bytes().decode("gbk")
    newline = "\r\n" if "\r\n" in text else "\n"
    if not text.endswith(("\n", "\r")):
        text += newline
    path.write_bytes((text + newline.join(lines) + newline).encode("gbk"))
    os.utime(path, (mtime, mtime))


class City:
    def __init__(self, root: Path) -> None:
        self.inbox = root / "inbox"
        self.home = root / "home"
        self.env = {
            **os.environ,
            "GOVPERF_HOME": str(self.home),
            "GOVPERF_INBOX": str(self.inbox),
            "GOVPERF_CACHE": str(root / "cache"),
            "DAGSTER_HOME": str(self.home / "dagster_home"),
        }
        for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE", "GOVPERF_CONFIG"):
            self.env.pop(derived, None)

    def govperf(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([GOVPERF, *args], env=self.env, capture_output=True, text=True, timeout=900)

    def explain(self, *args: str) -> dict:
        result = self.govperf("explain", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "govperf.duckdb"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    city = City(tmp_path_factory.mktemp("explain"))
    generate_city(
        city.inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=5,
        first_month="2025-07",
        last_month="2025-09",
        transactions=2000,
    )
    day, next_day = f"{MONTH}-15 09:00:00", f"{MONTH}-16 09:00:00"
    _append_gbk(
        city.inbox / "service_transactions" / f"好差评明细_{YYYYMM}.csv",
        [
            # accepted, with personal data in the comment: counts as rated and good
            f"SX{YYYYMM}999990,{DEPARTMENT},市政务服务和数据管理局,企业开办一件事,网办,{day},{next_day},1,3,3,满意,{COMMENT},,,,,",
            # quarantined: a rating that is no level
            f"SX{YYYYMM}999991,{DEPARTMENT},市政务服务和数据管理局,企业开办一件事,网办,{day},{next_day},1,3,3,很好,{COMMENT},,,,,",
        ],
    )
    run = city.govperf("run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return city


# ------------------------------------------------------------ the raw file


def _raw_transactions(inbox: Path) -> pd.DataFrame:
    """Every row of every raw transactions file, read with pandas, with its line."""
    frames = []
    for path in sorted((inbox / "service_transactions").glob("*.csv")):
        frame = pd.read_csv(path, encoding="gbk", dtype=str, keep_default_na=False)
        frame["line"] = frame.index + 2  # the header is line 1
        frame["file"] = path
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True)
    return raw[raw["评价等级"].isin([*RATINGS, ""])]  # a rating that is no level is quarantined


def _raw_good_review_counts(inbox: Path, department: str, month: str) -> dict:
    raw = _raw_transactions(inbox)
    completed = raw[(raw["部门编码"] == department) & raw["办结时间"].str.startswith(month)]
    ratings = completed["评价等级"].map(RATINGS)
    upheld_bad = (ratings <= 2) & (completed["申诉结果"] == "申诉成立")
    rated = completed[ratings.notna() & ~upheld_bad]
    good = rated[rated["评价等级"].map(RATINGS) >= 3]
    return {"completed": len(completed), "rated": len(rated), "good": len(good), "good_lines": set(good["line"])}


class _Cells(HTMLParser):
    """The department page's indicator rows (cells as text, links of the score) and ids."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        self.ids: set[str] = set()
        self._indicator: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "tr" and "data-indicator" in attrs:
            self._indicator = attrs["data-indicator"]
            self.rows[self._indicator] = []
        elif tag in ("td", "th") and self._indicator:
            self._cell = []
        elif tag == "a" and self._indicator and self._cell is not None:
            self.links[self._indicator] = attrs.get("href", "")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._indicator:
            self.rows[self._indicator].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._indicator = None


def _department_page(city: City, edition: str, department: str) -> _Cells:
    folder = "quarterly" if "Q" in edition else "monthly"
    page = city.home / "bulletins" / folder / edition / f"bulletin_{edition}_departments" / f"{department}.html"
    parser = _Cells()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


# ------------------------------------------------------------ the tests


def test_bulletin_number_reaches_its_archive_lines_through_explain_alone(city: City) -> None:
    """好评率 as the drafted edition's department page shows it, explained by the
    command alone, and every count recomputed from the raw inbox file."""
    cells = _department_page(city, MONTH, DEPARTMENT).rows["good_review_rate"]
    shown_value, shown_n = cells[2], cells[3]  # 本期值, 样本量

    explained = city.explain("--period", MONTH, "--department", DEPARTMENT, "--indicator", "good_review_rate")
    [indicator] = explained["indicators"]
    [part] = indicator["parts"]
    counts = {s["label"].split(" ")[0]: s["count"] for s in part["steps"]}
    raw = _raw_good_review_counts(city.inbox, DEPARTMENT, MONTH)
    assert counts == {"已办结": raw["completed"], "已评价": raw["rated"], "好评": raw["good"]}
    assert shown_n == str(raw["rated"])
    assert shown_value == f"{100 * raw['good'] / raw['rated']:,.2f}%"

    # the lines it names, read from the archived original it names, are the raw good reviews
    lines = set()
    for file in part["files"]:
        archived = Path(file["archive_path"])
        assert archived.is_absolute() and archived.is_file()
        original = city.inbox / file["file_name"]
        assert archived.read_bytes() == original.read_bytes()
        archived_rows = pd.read_csv(archived, encoding="gbk", dtype=str, keep_default_na=False)
        for line in file["lines"]:
            assert archived_rows.loc[line - 2, "部门编码"] == DEPARTMENT
            assert archived_rows.loc[line - 2, "办结时间"].startswith(MONTH)
            lines.add((original, line))
    # `lines` are the rated rows (the denominator); the good ones are among them
    good = {(f, n) for f, n in zip(*_raw_lines_where_good(city.inbox, DEPARTMENT, MONTH))}
    assert good <= lines and len(lines) == raw["rated"]


def _raw_lines_where_good(inbox: Path, department: str, month: str) -> tuple[list[Path], list[int]]:
    raw = _raw_transactions(inbox)
    chosen = raw[
        (raw["部门编码"] == department) & raw["办结时间"].str.startswith(month) & (raw["评价等级"].map(RATINGS) >= 3)
    ]
    return list(chosen["file"]), list(chosen["line"])


# One indicator of each source (indicator_observations: tests/test_nbs_exports.py's source is not in the sample).
ONE_PER_SOURCE = {
    "good_review_rate": "service_transactions",
    "complaint_rate": "hotline_complaints",
    "survey_satisfaction": "survey_responses",
    "leader_review_score": "leader_reviews",
    "budget_deviation": "budget_execution",
    "project_on_time_rate": "key_projects",
}


@pytest.mark.parametrize("indicator_id", sorted(ONE_PER_SOURCE))
def test_one_indicator_of_each_source_is_explained_to_its_lines(city: City, indicator_id: str) -> None:
    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        department, n_obs, raw_value = con.execute(
            "SELECT department_id, n_obs, raw_value FROM marts.fct_indicator_values"
            " WHERE period = '2025-07-01' AND period_type = 'quarter' AND indicator_id = ? AND n_obs > 0"
            " ORDER BY n_obs DESC, department_id LIMIT 1",
            [indicator_id],
        ).fetchone()
    finally:
        con.close()
    explained = city.explain("--period", "2025-Q3", "--department", department, "--indicator", indicator_id)
    [indicator] = explained["indicators"]
    assert indicator["n_obs"] == n_obs and indicator["raw_value"] == raw_value
    parts = {p["source"]: p for p in indicator["parts"]}
    part = parts[ONE_PER_SOURCE[indicator_id]]
    assert part["files"] and all(Path(f["archive_path"]).is_file() for f in part["files"])
    assert all(f["lines"] and min(f["lines"]) >= 2 for f in part["files"])
    denominators = [s["count"] for p in parts.values() for s in p["steps"] if s["role"] == "denominator"]
    assert denominators == [n_obs]
    assert indicator["derivation"] and "得分 =" in indicator["derivation"][-1]
    text = city.govperf("explain", "--period", "2025-Q3", "--department", department, "--indicator", indicator_id)
    assert text.returncode == 0 and "排名" in text.stdout and part["files"][0]["archive_path"] in text.stdout


def test_rows_csv_holds_the_warehouse_rows_masked(city: City, tmp_path: Path) -> None:
    target = tmp_path / "rows.csv"
    result = city.govperf("explain", "--period", MONTH, "--department", DEPARTMENT, "--rows", str(target))
    assert result.returncode == 0, result.stderr
    text = target.read_text(encoding="utf-8")
    for secret in (MOBILE, ID_NUMBER, ID_NUMBER[:17]):
        assert secret not in text
    with target.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    raw = _raw_transactions(city.inbox)
    [planted_line] = raw.loc[raw["办件编号"] == f"SX{YYYYMM}999990", "line"]
    planted = [r for r in rows if r["indicator_id"] == "good_review_rate" and int(r["source_line"]) == planted_line]
    assert planted, "the planted row (personal data in its comment) is among the rows"
    assert {r["source"] for r in rows} >= {"service_transactions", "survey_responses"}
    # every row is the warehouse's: same line, same masked values
    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        for row in rows[:50]:
            stored = con.execute(
                f"SELECT department_id FROM staging.stg_lake__{row['source']} WHERE file_hash = ? AND source_line = ?",
                [row["file_hash"], int(row["source_line"])],
            ).fetchall()
            assert stored and stored[0][0] == row["department_id"]
    finally:
        con.close()


def test_quarantine_mart_has_every_lake_quarantine_row(city: City) -> None:
    lake = city.home / "lake" / "quarantine"
    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        in_lake = con.execute(f"SELECT count(*) FROM read_parquet('{lake}/*/*/*.parquet')").fetchone()[0]
        in_mart, planted = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE raw_text LIKE ?) FROM marts.fct_quarantine",
            [f"SX{YYYYMM}999991%"],
        ).fetchone()
        leaked = con.execute(
            "SELECT count(*) FROM marts.fct_quarantine WHERE raw_text LIKE ? OR raw_text LIKE ?",
            [f"%{MOBILE}%", f"%{ID_NUMBER}%"],
        ).fetchone()[0]
    finally:
        con.close()
    assert in_lake >= 1 and in_mart == in_lake and planted == 1 and leaked == 0


def test_the_dbt_evidence_test_fails_when_a_rule_is_broken(city: City, tmp_path: Path) -> None:
    """The evidence test is the guarantee that explain and the marts agree: with
    good_review_rate's 好评 step loosened (rating >= 2), it fails, and names it."""
    import yaml

    rules = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    warehouse = tmp_path / "copy.duckdb"
    shutil.copyfile(city.warehouse, warehouse)
    env = {**city.env, "GOVPERF_DUCKDB": str(warehouse), "GOVPERF_LAKE": str(city.home / "lake")}

    def build(evidence_rules: list) -> subprocess.CompletedProcess:
        dbt_vars = {"period_start": "2025-07-01", "period_end": "2025-09-01", "lookback_months": 3}
        return subprocess.run(
            [DBT, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
             "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
             "--vars", json.dumps(dbt_vars | {"evidence_rules": evidence_rules}),
             "--select", "fct_indicator_evidence", "dim_evidence_rule", "--exclude", "test_type:unit"],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip

    intact = build(rules["evidence_rules"])
    assert intact.returncode == 0, intact.stdout[-3000:]
    broken = json.loads(json.dumps(rules["evidence_rules"]))
    [good_review] = [r for r in broken if r["indicator_id"] == "good_review_rate"]
    good_review["parts"][0]["steps"][2]["predicate"] = "rating >= 2"
    failed = build(broken)
    assert failed.returncode != 0
    assert re.search(r"FAIL \d+ evidence_reproduces_indicator_values", failed.stdout), failed.stdout[-3000:]


def test_every_scored_indicator_on_a_department_page_links_to_its_derivation(city: City) -> None:
    for edition in (MONTH, "2025-Q3"):
        page = _department_page(city, edition, DEPARTMENT)
        scored = {i: cells for i, cells in page.rows.items() if cells[6] not in ("—", "")}
        assert scored, "no scored indicator on the page"
        for indicator_id in scored:
            href = page.links[indicator_id]
            assert href == f"#derive-{indicator_id}", (indicator_id, href)
            assert href[1:] in page.ids


def test_clear_errors_for_unknown_department_indicator_and_period(city: City) -> None:
    cases = {
        ("--period", MONTH, "--department", "D999"): "D999",
        ("--period", MONTH, "--department", DEPARTMENT, "--indicator", "no_such_indicator"): "no_such_indicator",
        ("--period", "2031-01", "--department", DEPARTMENT): "2031-01",
        ("--period", "2025-13", "--department", DEPARTMENT): "2025-13",
    }
    for args, named in cases.items():
        result = city.govperf("explain", *args)
        assert result.returncode != 0 and named in result.stderr and "Traceback" not in result.stderr, result.stderr
