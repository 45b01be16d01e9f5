"""The rating-gaming screens (marts.fct_anomalies) find what the sample generator
plants, and little else; their p-values and q-values are what they claim to be.

Five seeds, each generating one quarter of the sample city, together 2025-Q1 to
2026-Q1 in one inbox, then one real run over the 15 months (Dagster, dbt, DuckDB):
every screen works within a period, so each quarter, with its months, is a trial of
its own seed. In each, the generator plants every pattern in two named departments
near the screens' detection limits and leaves the others clean.
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import numpy as np
import pytest
from scipy import stats

from pipelines.publish.bulletin import ANNEX_PAGE, collect_edition, write_edition
from pipelines.publish.config import BulletinConfig, Edition, load_bulletin_config
from pipelines.publish.finding_marks import add_mark
from pipelines.runner import failure_messages, launch
from pipelines.sample.gaming import GAMING_SCREENS
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import use_home

SEEDS = (1, 2, 3, 4, 5)
QUARTERS = (
    ("2025-01", "2025-03"),
    ("2025-04", "2025-06"),
    ("2025-07", "2025-09"),
    ("2025-10", "2025-12"),
    ("2026-01", "2026-03"),
)
PER_QUARTER = 9_000  # transactions, as the small test city has for its quarter
SHARE_SCREENS = ("rating_mismatch", "rating_uniformity", "rating_fast")


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("planted")
    planted = {}
    for seed, (first, last) in zip(SEEDS, QUARTERS, strict=True):
        summary = generate_city(
            base / "inbox",
            departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
            seed=seed,
            first_month=first,
            last_month=last,
            transactions=PER_QUARTER,
        )
        planted[dt.date.fromisoformat(first + "-01")] = summary.gaming
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, base / "home", base / "inbox")
        result = launch(QUARTERS[0][0], QUARTERS[-1][1])
        assert result.success, failure_messages(result)
        con = duckdb.connect(str(settings().duckdb_path), read_only=True)
        cursor = con.execute("select * from marts.fct_anomalies")
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
        con.close()
        yield {"planted": planted, "rows": rows, "home": base / "home"}


def _quarter_of(period: dt.date) -> dt.date:
    return dt.date(period.year, 3 * ((period.month - 1) // 3) + 1, 1)


@pytest.mark.slow
def test_every_planted_department_is_flagged_and_at_most_one_clean_one_per_screen(screened):
    figures = []
    for screen in GAMING_SCREENS:
        found = missed = clean_flags = 0
        for quarter, gaming in screened["planted"].items():
            gamed = {d for departments in gaming.values() for d in departments}
            flagged = {
                r["department_id"]
                for r in screened["rows"]
                if r["screen"] == screen and r["flagged"] and _quarter_of(r["period"]) == quarter
            }
            assert set(gaming[screen]) <= flagged, f"{screen} {quarter}: planted {gaming[screen]} not all flagged"
            clean = flagged - gamed
            assert len(clean) <= 1, f"{screen} {quarter}: clean departments flagged: {sorted(clean)}"
            found += len(set(gaming[screen]) & flagged)
            missed += len(set(gaming[screen]) - flagged)
            clean_flags += len(clean)
        figures.append(
            f"{screen}: recall {found}/{found + missed}, clean departments flagged {clean_flags} "
            f"over {len(SEEDS)} seeds, precision {found / (found + clean_flags):.2f}"
        )
    print("\n" + "\n".join(figures))


@pytest.mark.slow
def test_share_screens_p_values_are_the_exact_beta_binomial_tail(screened):
    checked = 0
    for r in screened["rows"]:
        if r["screen"] not in SHARE_SCREENS or r["observed"] < 3:
            continue
        n, x, p, rho = r["n"], r["observed"], r["expected"], r["rho"]
        # summed from scipy's probabilities: betabinom.sf itself is off by up to 1e-3
        # relative in the far tail when alpha + beta is large (rho small)
        k = np.arange(x, n + 1)
        if rho < 1e-9:
            exact = stats.binom.pmf(k, n, p).sum()
        else:
            exact = stats.betabinom.pmf(k, n, p * (1 / rho - 1), (1 - p) * (1 / rho - 1)).sum()
        # p and rho are stored to 12 significant digits: the tail follows to about 1e-9
        assert r["p_value"] == pytest.approx(min(1.0, exact), rel=1e-6, abs=1e-12), r
        checked += 1
    assert checked > 100


@pytest.mark.slow
def test_q_values_are_benjamini_hochberg_within_screen_and_period(screened):
    families: dict[tuple, list[dict]] = {}
    for r in screened["rows"]:
        families.setdefault((r["screen"], r["period"], r["period_type"]), []).append(r)
    for family in families.values():
        expected = stats.false_discovery_control([r["p_value"] for r in family], method="bh")
        for r, q in zip(family, expected, strict=True):
            assert r["q_value"] == pytest.approx(q, rel=1e-9, abs=1e-12)
            assert r["flagged"] == (r["q_value"] <= r["fdr"])
    assert len(families) == len(GAMING_SCREENS) * (15 + 5)


@pytest.mark.slow
def test_flags_name_departments_only_in_the_internal_annex_unless_configured_and_marks_are_shown(
    screened, tmp_path, monkeypatch
):
    use_home(monkeypatch, screened["home"], tmp_path)
    edition = Edition.parse("2025-Q3")
    config = load_bulletin_config(PROJECT_ROOT / "sources" / "reference")
    assert config.rating_screens.show == "annex"  # the sample's choice
    shown_config = BulletinConfig.model_validate(config.model_dump() | {"rating_screens": {"show": "edition"}})
    con = duckdb.connect(str(settings().duckdb_path), read_only=True)
    try:
        flag = next(f for f in collect_edition(con, edition, config)["screens"]["flagged"] if f["ranked"])
        add_mark(flag["screen"], "quarter", edition.period, flag["department_id"], "已排除", "张三", "复核为正常评价")
        annexed = collect_edition(con, edition, config)
        shown = collect_edition(con, edition, shown_config)
    finally:
        con.close()
    flagged_name = flag["department_name"]

    write_edition(annexed, tmp_path / "annex")
    public = (tmp_path / "annex" / f"{edition.stem}.html").read_text(encoding="utf-8")
    annex = (tmp_path / "annex" / ANNEX_PAGE).read_text(encoding="utf-8")
    section = public[public.index("好差评数据疑点") : public.index("</section>", public.index("好差评数据疑点"))]
    assert flagged_name not in section and re.search(r"本期筛查出疑点 \d+ 项", section)
    assert "内部资料" in annex and flagged_name in annex and "已排除（张三" in annex
    # no channel codes, no bare p-value of 0, in what a reader sees
    assert not re.search(r"\b(offline|online)\b", annex) and '<td class="num">0</td>' not in annex
    assert ANNEX_PAGE not in public  # linked from no public page
    page = (tmp_path / "annex" / f"{edition.stem}_departments").glob("*.html")
    assert not any("screen-flags" in p.read_text(encoding="utf-8") for p in page)

    write_edition(shown, tmp_path / "shown")
    public = (tmp_path / "shown" / f"{edition.stem}.html").read_text(encoding="utf-8")
    assert 'id="screen-flags"' in public and flagged_name in public and "已排除" in public
    pages = {
        p.stem: p.read_text(encoding="utf-8")
        for p in (tmp_path / "shown" / f"{edition.stem}_departments").glob("*.html")
    }
    assert "已排除" in pages[flag["department_id"]]
