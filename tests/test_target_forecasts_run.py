"""Forecasts of target attainment through the real pipeline: Dagster runs the forecast
asset between two dbt steps, dbt reads its lake files into marts.fct_target_forecasts,
and the editions and department pages show them.

Eight months of the sample city (2025-01..2025-08): a forecast needs six reported months,
so June, July and August have forecasts and the months before have none.
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.analytics import target_forecasts as tf
from pipelines.analytics.forecast import forecast_attainment
from pipelines.publish.edition_folder import drafts_in
from pipelines.runner import failure_messages, launch
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import use_home

FIRST, LAST = "2025-01", "2025-08"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("forecasts")
    generate_city(
        base / "inbox",
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=7,
        first_month=FIRST,
        last_month=LAST,
        transactions=16_000,
    )
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, base / "home", base / "inbox")
        result = launch(FIRST, LAST)
        assert result.success, failure_messages(result)
        s = settings()
        con = duckdb.connect(str(s.duckdb_path), read_only=True)
        marts = {
            "forecasts": con.sql("select * from marts.fct_target_forecasts order by all").df(),
            "values": con.sql(
                "select department_id, indicator_id, period, raw_value as value from marts.fct_indicator_values"
                " where period_type = 'month'"
            ).df(),
            "indicators": con.sql("select * from marts.dim_indicator").df(),
        }
        con.close()
        yield {"marts": marts, "lake": s.lake, "bulletins": s.bulletins}


def edition_page(bulletins, key: str, department: str | None = None) -> str:
    draft = next(d for d in drafts_in(bulletins) if d.edition.key == key)
    version = draft.current()
    if department is None:
        return next(version.glob("bulletin_*.html")).read_text(encoding="utf-8")
    return next(version.glob(f"*_departments/{department}.html")).read_text(encoding="utf-8")


def visible(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[start : start + 40_000]))


@pytest.mark.slow
def test_the_mart_holds_the_lake_files_made_from_the_marts(run):
    forecasts = run["marts"]["forecasts"]
    months = sorted(pd.to_datetime(forecasts["period"]).dt.date.unique())
    assert months == [dt.date(2025, m, 1) for m in range(1, 9)]
    ok = forecasts[forecasts["status"] == "ok"]
    assert sorted(pd.to_datetime(ok["period"]).dt.date.unique()) == [dt.date(2025, m, 1) for m in (6, 7, 8)]
    assert set(forecasts[pd.to_datetime(forecasts["period"]) < "2025-06-01"]["status"]) == {"too_short"}
    # every row of a month's lake file is in the mart, figure for figure
    for month in months:
        lake = pq.read_table(tf.month_file(run["lake"], month)).to_pandas()
        mart = forecasts[pd.to_datetime(forecasts["period"]).dt.date == month]
        assert len(lake) == len(mart) > 0
        pd.testing.assert_series_equal(
            lake.sort_values(["department_id", "indicator_id"])["p_meet"].reset_index(drop=True),
            mart.sort_values(["department_id", "indicator_id"])["p_meet"].reset_index(drop=True),
            check_names=False,
        )
    # August's forecasts are forecast.py's on the marts' values through August, nothing else
    values = run["marts"]["values"]
    august = ok[pd.to_datetime(ok["period"]).dt.date == dt.date(2025, 8, 1)]
    indicators = run["marts"]["indicators"]
    targets = indicators[
        indicators["target"].notna() & indicators["catalogue_version"].isin(set(august["catalogue_version"]))
    ]
    targets = targets.rename(columns={"bound_lo": "lower_bound", "bound_hi": "upper_bound"})
    through = values[
        values["department_id"].isin(
            set(forecasts[pd.to_datetime(forecasts["period"]) == "2025-08-01"]["department_id"])
        )
    ]
    expected = forecast_attainment(through, targets)
    expected = expected[expected["status"] == "ok"].set_index(["department_id", "indicator_id"])
    got = august.set_index(["department_id", "indicator_id"])
    assert len(got) == len(expected) > 50
    for column in ("forecast", "lo80", "hi80", "p_meet"):
        assert (got[column] - expected.loc[got.index, column]).abs().max() < 1e-9, column
    # where the series stands: the last reported value
    latest = values.set_index(["department_id", "indicator_id", pd.to_datetime(values["period"]).dt.date])["value"]
    for (department, indicator), row in got.head(30).iterrows():
        assert row["last_value"] == pytest.approx(
            latest[(department, indicator, pd.Timestamp(row["last_period"]).date())]
        )


@pytest.mark.slow
def test_editions_list_the_pairs_at_risk_and_the_pages_show_every_forecast(run):
    forecasts = run["marts"]["forecasts"]
    for key, month in (("2025-08", "2025-08-01"), ("2025-Q2", "2025-06-01")):
        made = forecasts[(pd.to_datetime(forecasts["period"]) == month) & (forecasts["status"] == "ok")]
        at_risk = made[made["p_meet"] < 0.5]
        text = visible(edition_page(run["bulletins"], key), "target-forecasts")
        assert f"共预测 {len(made)} 项" in text, key
        assert f"达标概率低于 50.0% 的 {len(at_risk)} 项" in text, key
    # a department page lists each of its forecasts with its probability
    august = forecasts[(pd.to_datetime(forecasts["period"]) == "2025-08-01") & (forecasts["status"] == "ok")]
    department = august["department_id"].value_counts().index[0]
    page = edition_page(run["bulletins"], "2025-08", department)
    section = page[page.index('id="target-forecasts"') :]
    section = section[: section.index("</section>")]
    cells = re.findall(r"<tr(?: class=\"at-risk\")?><td>", section)
    assert len(cells) == int((august["department_id"] == department).sum())
    for p in august[august["department_id"] == department]["p_meet"]:
        assert f"{p * 100:.1f}%" in section
