"""年度绩效考核: the year as a period, from `govperf run` to `govperf approve --period 2025`.

A city with data for November and December 2025 only: its year pools the same rows
as its fourth quarter, so every annual figure must equal the quarter's (a check of
the year's grain, scope and evidence, worked without a formula). The catalogue gives
the year its own grades, quota and tie rule; the annual grades are worked again here
from the scores, by the rules of docs/methodology.md §14.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.publish.derivation import number
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from tests.conftest import SHARED_CACHE, drafted_on

GOVPERF = str(Path(sys.executable).with_name("govperf"))

ANNUAL = {
    "grades": [
        {"grade": "优秀", "min_score": 70, "max_share": 0.15},
        {"grade": "良好", "min_score": 65},
        {"grade": "合格", "min_score": 55},
        {"grade": "不合格", "min_score": 0},
    ],
    "quota_ties": "all_keep",
}


def govperf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([GOVPERF, *args], env=env, capture_output=True, text=True, timeout=900)


# In this city 市人民政府办公室 merges into 市政务服务和数据管理局 on 30 November 2025.
MERGED, SUCCESSOR, MERGED_ON = "D002", "D001", dt.date(2025, 11, 30)


def _city(root: Path) -> dict[str, str]:
    registry = yaml.safe_load((PROJECT_ROOT / "sources" / "reference" / "departments.yaml").read_text(encoding="utf-8"))
    merged = next(d for d in registry["departments"] if d["id"] == MERGED)
    merged.update(valid_to=MERGED_ON, merged_into=SUCCESSOR)
    departments = root / "departments.yaml"
    departments.write_text(yaml.safe_dump(registry, allow_unicode=True, sort_keys=False), encoding="utf-8")
    generate_city(
        root / "inbox",
        departments_yaml=departments,
        seed=11,
        first_month="2025-11",
        last_month="2025-12",
        transactions=3000,
    )
    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "sources", config, ignore=shutil.ignore_patterns("sample"))
    shutil.copyfile(departments, config / "reference" / "departments.yaml")
    catalogue_path = config / "reference" / "catalogue.yaml"
    catalogue = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    for version in catalogue["versions"]:
        version["annual"] = ANNUAL
    catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    return env | {
        "GOVPERF_HOME": str(root / "home"),
        "GOVPERF_INBOX": str(root / "inbox"),
        "GOVPERF_CONFIG": str(config),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(root / "home" / "dagster_home"),
    }


def _rows(root: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(root / "home" / "warehouse" / "govperf.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _annual_grade(score: float, place_first_tied: int, n_ranked: int, vetoed: bool) -> str:
    """The annual grade by ANNUAL: threshold on the score to 2 decimals, then 优秀's quota
    of floor(0.15 n); all_keep: a department keeps 优秀 when its first tied place is within."""
    if vetoed:
        return "不合格"
    grades = ANNUAL["grades"]
    order = next(i for i, g in enumerate(grades) if round(score, 2) >= g["min_score"])
    if order == 0 and place_first_tied > math.floor(grades[0]["max_share"] * n_ranked):
        order = 1
    return grades[order]["grade"]


@pytest.mark.slow
def test_the_year_is_scored_drafted_and_approved(tmp_path):
    env = _city(tmp_path)
    home = tmp_path / "home"
    run = govperf("run", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (home / "bulletins" / "annual" / "2025" / "bulletin_2025.html").exists()

    # The year pools November and December, as the fourth quarter does: the same values.
    differ = _rows(
        tmp_path,
        """
        select y.department_id, y.indicator_id, y.raw_value, q.raw_value
        from marts.fct_indicator_values as y
        full join (select * from marts.fct_indicator_values where period_type = 'quarter' and period = '2025-10-01') as q
            using (department_id, indicator_id)
        where y.period_type = 'year' and y.period = '2025-01-01'
          and (y.raw_value is distinct from q.raw_value or y.n_obs is distinct from q.n_obs)
        """,
    )
    assert differ == []
    year = _rows(
        tmp_path,
        "select department_id, base_score, composite_score, rank, bonus_points, veto_reason, grade, n_ranked"
        " from marts.fct_rankings where period_type = 'year' and period = '2025-01-01' order by department_id",
    )
    quarter = _rows(
        tmp_path,
        "select department_id, base_score, composite_score, rank, bonus_points, veto_reason"
        " from marts.fct_rankings where period_type = 'quarter' and period = '2025-10-01' order by department_id",
    )
    assert len(year) == len(quarter) > 50
    assert [r[:6] for r in year] == quarter
    # The annual grades, worked again from the scores.
    scores = [round(r[2], 2) for r in year if r[5] is None]
    worked = {
        department_id: _annual_grade(
            composite, 1 + sum(s > round(composite, 2) for s in scores), n_ranked, veto is not None
        )
        for department_id, _base, composite, _rank, _bonus, veto, _grade, n_ranked in year
    }
    assert {r[0]: r[6] for r in year} == worked
    assert sum(g == "优秀" for g in worked.values()) >= 1 and any(r[5] for r in year)  # a quota and a veto at work

    # The annual edition: each department's quarters beside its year, and the lists.
    page = (home / "bulletins" / "annual" / "2025" / "bulletin_2025.html").read_text(encoding="utf-8")
    assert "2025年度绩效考核结果通报" in page
    table = page[page.index('id="annual-results"') : page.index("</table>", page.index('id="annual-results"'))]
    first = re.search(r'<tr data-department-id="([^"]+)">(.*?)</tr>', table, flags=re.S)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", first[2], flags=re.S)]
    q4 = {r[0]: r[2] for r in quarter}
    assert cells[2:5] == ["—", "—", "—"] and cells[5].startswith(f"{q4[first[1]]:.2f}")
    department_page = home / "bulletins" / "annual" / "2025" / "bulletin_2025_departments" / f"{first[1]}.html"
    assert 'previous-year-grade">上年等次 —' in department_page.read_text(encoding="utf-8")  # no 2024 appraisal
    best = re.sub(r"<[^>]+>", "", page[page.index('id="annual-best"') :].split("</p>")[0])
    assert f"（{sum(g == '优秀' for g in worked.values())} 个）" in best

    # Drafted early in January; approved after the appeal window, through Dagster.
    drafted_on(home, "2026-01-05 09:00")
    # A correction delivered since the last scoring: approving would freeze a year that moves.
    waiting = _correct_december(tmp_path / "inbox", "D001")
    refused = govperf("approve", "--period", "2025", "--by", "张主任", "--at", "2026-01-20 09:00", env=env)
    assert refused.returncode == 1 and "the year is not scored as it stands" in refused.stderr, refused.stderr
    waiting.unlink()
    approved = govperf("approve", "--period", "2025", "--by", "张主任", "--at", "2026-01-20 10:00", env=env)
    assert approved.returncode == 0, approved.stderr[-3000:]
    revision = home / "bulletins" / "published" / "annual" / "2025" / "r1"
    manifest = json.loads((revision / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["period"], manifest["approved_by"]) == ("2025", "张主任")
    assert (revision / "bulletin_2025.pdf").exists()
    verified = govperf("verify", "--period", "2025", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # 封账: the approval froze 2025; every file had landed, so nothing is out of date.
    assert "year 2025 frozen at 2026-01-20 10:00" in approved.stdout, approved.stdout
    assert "every step is up to date" in govperf("run", "--dry-run", env=env).stdout
    before = _d001_december(tmp_path)
    correction = _correct_december(tmp_path / "inbox", "D001")
    refused = govperf("run", env=env)
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert _d001_december(tmp_path) == before and correction.is_file()
    warned = _rows(
        tmp_path,
        "select details from marts.fct_data_quality where check_name = 'year_frozen' and not passed"
        " and period = '2025-12-01'",
    )
    assert len(warned) == 1 and f"{correction.name} is a resubmission for 2025-12" in warned[0][0], warned
    reopened = govperf("year", "reopen", "2025", "--reason", "D001 更正12月评价", "--by", "李四", env=env)
    assert reopened.returncode == 0, reopened.stderr
    landed = govperf("run", env=env)
    assert landed.returncode == 0, landed.stderr[-3000:]
    assert _d001_december(tmp_path)["good_review_rate"] < before["good_review_rate"]
    assert govperf("verify", env=env).returncode == 0

    # Built up instead (§9b): the survey annual-only (a year-end 万人评), the year from
    # its quarters. With one quarter, a department's base = (1 − s) × Q4's base (which
    # leaves the survey out) + s × its year survey score, s the survey's share of the
    # tree; without a survey value, Q4's base.
    share = _build_the_year_up(Path(env["GOVPERF_CONFIG"]) / "reference" / "catalogue.yaml", "survey_satisfaction")
    rebuilt = govperf("run", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    checked = _rows(
        tmp_path,
        f"""
        select y.department_id, y.base_score,
               case when survey.score is null then q.base_score
                    else {1 - share} * q.base_score + {share} * survey.score end,
               survey.score, q_survey.score
        from marts.fct_rankings as y
        inner join marts.fct_rankings as q
            on q.department_id = y.department_id and q.period_type = 'quarter' and q.period = '2025-10-01'
        left join marts.fct_indicator_values as survey
            on survey.department_id = y.department_id and survey.period_type = 'year'
           and survey.indicator_id = 'survey_satisfaction'
        left join marts.fct_indicator_values as q_survey
            on q_survey.department_id = y.department_id and q_survey.period_type = 'quarter'
           and q_survey.period = '2025-10-01' and q_survey.indicator_id = 'survey_satisfaction'
        where y.period_type = 'year' and y.period = '2025-01-01'
        """,
    )
    assert len(checked) > 50 and sum(survey is not None for *_r, survey, _q in checked) > 50
    assert all(abs(base - worked) < 1e-4 for _d, base, worked, *_r in checked), checked[:5]
    assert all(q_survey is None for *_rest, q_survey in checked)  # the quarter leaves the survey out
    assert _rows(tmp_path, "select count(*) from marts.fct_score_changes where period_type = 'year'") == [(0,)]
    # The marts, explain and the edition say how the year was made.
    department_id, base, _worked, survey, _q = next(r for r in checked if r[3] is not None)
    parts = _rows(
        tmp_path,
        "select base_method, built_from, annual_part, annual_share from marts.fct_rankings"
        f" where period_type = 'year' and department_id = '{department_id}'",
    )
    assert parts[0][0] == "quarters" and abs(parts[0][3] - share) < 1e-9 and abs(parts[0][2] - survey) < 1e-4
    explained = govperf("explain", "--period", "2025", "--department", department_id, env=env)
    assert explained.returncode == 0, explained.stderr
    assert "（逐期合成，§9b）" in explained.stdout and f"= {number(base, 4)}" in explained.stdout
    assert "2025年第四季度" in explained.stdout
    page = (home / "bulletins" / "annual" / "2025" / "bulletin_2025.html").read_text(encoding="utf-8")
    assert "年度得分由各季度（月度）加减分前的得分按目录规定的权重合成" in page

    # Pooled again, a merged department now scored with its successor (§9b): the year
    # pools the successor's rows and the merged one's, so each count is the sum of the
    # two departments' fourth-quarter counts; the merged department has no year of its own.
    _score_merged_departments_with_their_successor(Path(env["GOVPERF_CONFIG"]) / "reference" / "catalogue.yaml")
    merged_run = govperf("run", env=env)
    assert merged_run.returncode == 0, merged_run.stderr[-3000:]
    counts = _rows(
        tmp_path,
        f"""
        select y.indicator_id, y.n_obs, q.n_obs,
               (select count(distinct coalesce(e.unit_key, e.file_hash || ':' || e.source_line))
                from marts.fct_indicator_evidence as e
                where e.period_type = 'year' and e.department_id = '{SUCCESSOR}'
                  and e.indicator_id = y.indicator_id and e.in_denominator)
        from marts.fct_indicator_values as y
        inner join (
            select indicator_id, sum(n_obs) as n_obs from marts.fct_indicator_values
            where period_type = 'quarter' and period = '2025-10-01' and department_id in ('{SUCCESSOR}', '{MERGED}')
            group by 1
        ) as q using (indicator_id)
        where y.period_type = 'year' and y.department_id = '{SUCCESSOR}'
          and y.indicator_id in ('complaint_rate', 'good_review_rate', 'on_time_rate', 'survey_satisfaction')
        order by 1
        """,
    )
    assert len(counts) == 4 and all(year == both == evidence for _i, year, both, evidence in counts), counts
    assert _rows(
        tmp_path,
        f"select count(*) from marts.fct_indicator_values where period_type = 'year' and department_id = '{MERGED}'"
        f" union all select count(*) from marts.fct_rankings where period_type = 'year' and department_id = '{MERGED}'"
        f" union all select count(*) from marts.fct_rankings where period_type = 'quarter' and department_id = '{MERGED}'"
        f" union all select count(*) from marts.fct_indicator_evidence where period_type = 'year'"
        f" and department_id = '{MERGED}'",
    ) == [(0,), (0,), (1,), (0,)]
    explained = govperf("explain", "--period", "2025", "--department", MERGED, env=env)
    assert explained.returncode == 1 and f"its year counts with {SUCCESSOR}'s" in explained.stderr, explained.stderr
    assert _rows(tmp_path, f"select year_scored_with from marts.dim_department where department_id = '{MERGED}'") == [
        (SUCCESSOR,)
    ]
    page = (home / "bulletins" / "annual" / "2025" / "bulletin_2025.html").read_text(encoding="utf-8")
    assert f"{MERGED_ON} 撤销并入市政务服务和数据管理局，全年数据计入市政务服务和数据管理局" in page


def _score_merged_departments_with_their_successor(catalogue_path: Path) -> None:
    catalogue = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    for version in catalogue["versions"]:
        version["annual"] = ANNUAL | {"merged_departments": "successor"}
    catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _d001_december(root: Path) -> dict[str, float]:
    rows = _rows(
        root,
        "select indicator_id, raw_value from marts.fct_indicator_values where department_id = 'D001'"
        " and period = '2025-12-01' and period_type = 'month'",
    )
    return dict(rows)


def _correct_december(inbox: Path, department_id: str) -> Path:
    """The department's December transactions again, every rating now the worst: a late correction."""
    original = inbox / "service_transactions" / "好差评明细_202512.csv"
    rows = list(csv.reader(io.StringIO(original.read_bytes().decode("gbk"))))
    department, rating = rows[0].index("部门编码"), rows[0].index("评价等级")
    worst = [
        r[:rating] + ["非常不满意" if r[rating] else ""] + r[rating + 1 :]
        for r in rows[1:]
        if r[department] == department_id
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([rows[0], *worst])
    correction = original.with_name("好差评明细_202512_更正.csv")
    correction.write_bytes(out.getvalue().encode("gbk"))
    later = original.stat().st_mtime + 86400
    os.utime(correction, (later, later))
    return correction


def _share_of(node: dict, indicator_id: str, share: float = 1.0) -> float | None:
    """Mark `indicator_id` annual-only under `node`; its share of the tree (the product
    of its and its ancestors' weights over their siblings')."""
    children = node.get("children", [])
    for child in children:
        child_share = share * child["weight"] / sum(c["weight"] for c in children)
        if child.get("indicator") == indicator_id:
            child["annual_only"] = True
            return child_share
        found = _share_of(child, indicator_id, child_share)
        if found is not None:
            return found
    return None


def _build_the_year_up(catalogue_path: Path, indicator_id: str) -> float:
    """Make the year built up from its quarters, `indicator_id` annual-only; its share of the tree."""
    catalogue = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    shares = set()
    for version in catalogue["versions"]:
        version["annual"] = ANNUAL | {"method": "built_up", "built_up": {"periods": "quarter"}}
        shares.add(_share_of(version["tree"], indicator_id))
    catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (share,) = shares
    return share
