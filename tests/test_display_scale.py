"""An edition of an index published on 0–1 and ranked on 5 decimals shows its scores
at 5 decimals, rounded as R rounds them, and its trend charts on a 0–1 axis
(docs/methodology.md §8a). The index is test_r_style_index's generated one, run
through `govperf run` for one month (no Rscript needed): its catalogue set to
`scale: [0, 1]`, `round_mode: r`, `rank_decimals: 5`, `stored_decimals: 5`."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.wording import page_name
from pipelines.rounding import r_round
from tests.conftest import SHARED_CACHE
from tests.test_r_style_index import MONTHS, generate, govperf_run, write_config

pytestmark = pytest.mark.slow

MONTH = "2025-01"
SETTINGS = "  round: 2\n  round_mode: r\n  rank_decimals: 2\n"
ON_0_1 = "  scale: [0, 1]\n  round_mode: r\n  rank_decimals: 5\n  stored_decimals: 5\n"


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The warehouse, the month's bulletin folder and the environment of the run."""
    work = tmp_path_factory.mktemp("index_0_1")
    inbox, config, home = work / "inbox", work / "config", work / "home"
    inbox.mkdir()
    generate(inbox / MONTHS[MONTH], 1717)
    write_config(config)
    catalogue = config / "reference" / "catalogue.yaml"
    text = catalogue.read_text(encoding="utf-8")
    assert SETTINGS in text
    # values on 0–100 are off a 0–1 scale as they are: every indicator is normalised
    text = text.replace(SETTINGS, ON_0_1).replace("normalisation: identity", "normalisation: min_max")
    catalogue.write_text(text, encoding="utf-8")
    env = govperf_run(home, config, inbox, GOVPERF_CACHE=str(SHARED_CACHE))
    return home / "warehouse" / "govperf.duckdb", home / "bulletins" / "monthly" / MONTH, env


def _ranked(db: Path) -> list[tuple[str, float, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "select department_id, composite_score, rank from marts.fct_rankings"
            " where period_type = 'month' order by rank, department_id"
        ).fetchall()


def test_scores_show_at_5_decimals_as_r_rounds_them(edition: tuple[Path, Path, dict[str, str]]) -> None:
    db, folder, _ = edition
    html = (folder / f"bulletin_{MONTH}.html").read_text(encoding="utf-8")
    ranked = _ranked(db)
    assert len(ranked) == 30 and all(0 <= score <= 1 for _, score, _ in ranked)
    for department_id, score, _ in ranked:
        row = re.search(rf'<tr data-department-id="{department_id}">(.*?)</tr>', html, re.S)
        assert row is not None and f'<td class="num">{r_round(score, 5):.5f}</td>' in row.group(1)
    # the figure shown is the figure ranked: equal shown, equal rank; higher shown, better rank
    shown = [(f"{r_round(score, 5):.5f}", rank) for _, score, rank in ranked]
    for (a, rank_a), (b, rank_b) in itertools.pairwise(shown):
        assert (a == b) == (rank_a == rank_b) and a >= b
    # at 2 decimals some of them would look tied while ranked apart
    assert len({f"{score:.2f}" for _, score, _ in ranked}) < len({rank for _, _, rank in ranked})
    assert "排名按综合得分（保留 5 位小数）确定" in html and "标准化为 0–1 分" in html


def test_the_trend_chart_is_on_0_1(edition: tuple[Path, Path, dict[str, str]]) -> None:
    db, folder, _ = edition
    department_id, score, _ = _ranked(db)[0]
    page = (folder / f"bulletin_{MONTH}_departments" / f"{page_name(department_id)}.html").read_text(encoding="utf-8")
    assert "纵轴为得分 0–1；" in page
    assert "综合得分 <a href=" in page and f">{r_round(score, 5):.5f}</a>" in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    ticks = re.findall(r">(\d+(?:\.\d+)?)</text>", svg)
    assert "1.0" in ticks and "100" not in ticks, ticks


def test_explain_ranks_on_5_decimals(edition: tuple[Path, Path, dict[str, str]]) -> None:
    db, _, env = edition
    department_id, score, rank = _ranked(db)[-1]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "govperf"), "explain", "--period", MONTH, "--department", department_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"第 {rank} 名 / 共 30 个部门 —— 按综合得分保留 5 位小数 {r_round(score, 5):.5f} 排序" in result.stdout
    assert "结果限定在 0–1）" in result.stdout
