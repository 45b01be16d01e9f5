"""The bulletin shows scores as the catalogue version ranks them (docs/methodology.md
§8a): at rank_decimals (at least 2), rounded in its round_mode, score axes over its
scale; the defaults print what `.2f` printed. Hand-computed values; R's own results
for the `r` mode are quoted where they matter (R 4.x: round(0.834125, 5) = 0.83412)."""

from __future__ import annotations

import duckdb
import jinja2
import pytest

from pipelines.publish import charts, derivation, edition_rows, move_reasons, official_form, wording
from pipelines.publish.score_format import DEFAULT, ScoreFormat

INDEX_01 = ScoreFormat.of(rank_decimals=5, round_mode="r", scale_lo=0, scale_hi=1)


@pytest.mark.parametrize("value", [84.1234, 84.1251, 0.0, 100.0, 59.995, 3.14159, 99.9949, 12.0, 55.625, 31.375])
def test_the_defaults_print_what_2f_printed(value: float) -> None:
    assert DEFAULT.score(value) == f"{value:.2f}"
    assert DEFAULT.signed(value) == f"{value:+.2f}"
    assert DEFAULT.signed(-value) == f"{-value:+.2f}"
    assert DEFAULT.domain == [0, 100] and DEFAULT.scale_text == "0–100" and DEFAULT.rank_decimals_text == "两位"


def test_a_0_1_index_ranked_on_5_decimals_shows_5() -> None:
    # Two departments ranked apart on 0.83412 and 0.83407 no longer both show 0.83.
    assert (INDEX_01.score(0.83412), INDEX_01.score(0.83407)) == ("0.83412", "0.83407")
    # 0.834125 is stored as 0.83412500000000000533: its distances to 0.83412 and 0.83413
    # are the same double (5.000000000032756e-06), so R goes to the even 0.83412 ...
    assert INDEX_01.score(0.834125) == "0.83412"
    # ... where half_up (on the decimal shown, 0.834125) and engine take 0.83413.
    assert ScoreFormat.of(5, "half_up", 0, 1).score(0.834125) == "0.83413"
    assert ScoreFormat.of(5, "engine", 0, 1).score(0.834125) == "0.83413"
    assert ScoreFormat.of(5, "half_even", 0, 1).score(0.834125) == "0.83412"
    assert INDEX_01.score(None) == "—" and INDEX_01.signed(None) == "—"
    assert INDEX_01.domain == [0, 1] and INDEX_01.scale_text == "0–1"
    assert INDEX_01.rank_decimals_text == " 5 位"


def test_differences_follow_the_decimals() -> None:
    assert INDEX_01.signed(0.00005) == "+0.00005"
    assert INDEX_01.signed(-0.000015) == "-0.00001"  # R: round(-0.000015, 5) = -0.00001
    assert INDEX_01.magnitude(-0.01234) == "0.01234"
    assert INDEX_01.is_nil(0.000004) and not INDEX_01.is_nil(0.000006)


def test_rank_decimals_below_2_show_2_but_rank_on_their_own() -> None:
    one = ScoreFormat.of(rank_decimals=1, round_mode="engine")
    assert one.decimals == 2 and one.score(84.994) == "84.99"
    assert one.ranked(84.94) == 84.9
    assert INDEX_01.ranked(0.834125) == 0.83412
    assert ScoreFormat.of(None, None, None, None) == DEFAULT


def test_the_filters_take_the_editions_format() -> None:
    env = jinja2.Environment()
    env.filters.update(score=wording.format_score, signed=wording.format_signed)
    template = env.from_string("{{ x | score }} {{ d | signed }}")
    assert template.render(x=0.834125, d=-0.000015) == "0.83 -0.00"  # no format: the default
    assert template.render(x=0.834125, d=-0.000015, score_format=INDEX_01) == "0.83412 -0.00001"
    # engine prints as .2f did (the exact binary half 84.125 to even); half_up as Excel would
    assert template.render(x=84.125, d=1.5, score_format=DEFAULT) == "84.12 +1.50"
    assert template.render(x=84.125, d=1.5, score_format=ScoreFormat.of(2, "half_up")) == "84.13 +1.50"


def test_the_trend_chart_spans_the_scale() -> None:
    rows = [{"month": "2025-01", "series": "综合", "score": 0.8}]
    assert charts.trend(rows, ["综合"], ["2025-01"], INDEX_01.domain)["encoding"]["y"]["scale"]["domain"] == [0, 1]
    default = charts.trend(rows, ["综合"], ["2025-01"])
    assert default["encoding"]["y"]["scale"]["domain"] == [0, 100]


def _change(delta: float, after: float, contribution: float, score_change: float) -> dict:
    term = {"term": "on_time", "term_type": "indicator", "contribution": contribution, "score_change": score_change}
    return {"change": delta, "composite_after": after, "rank_change": 2, "terms": [term]}


def test_why_it_moved_at_the_versions_decimals() -> None:
    names = {"on_time": "按时办结率"}
    text = move_reasons.explanation(_change(0.01234, 0.83412, 0.00812, 0.04061), names, shown=INDEX_01)
    assert text == "上升 2 位，主要因按时办结率得分提高 0.0406 分（贡献 +0.0081 分）；综合得分提高 0.01234 分。"
    flat = move_reasons.explanation(_change(0.000004, 0.834125, 0.000004, 0.00001), names, shown=INDEX_01)
    assert flat == "上升 2 位，综合得分基本持平（0.83412 分）。"
    # the default: one decimal for a term, two for the composite, as before
    text = move_reasons.explanation(_change(1.234, 83.41, 0.812, 4.061), names)
    assert text == "上升 2 位，主要因按时办结率得分提高 4.1 分（贡献 +0.8 分）；综合得分提高 1.23 分。"


def test_the_key_points_name_the_highest_apart_at_5_decimals() -> None:
    rankings = [
        {"department_name": "甲", "rank": 1, "composite_score": 0.83412},
        {"department_name": "乙", "rank": 2, "composite_score": 0.83407},
    ]
    context = {
        "rankings": rankings,
        "n_ranked": 2,
        "grade_counts": [("优秀", 1), ("良好", 1), ("合格", 0), ("不合格", 0)],
        "vetoed": [],
        "red_count": 0,
        "amber_count": 0,
        "warnings": [],
        "improvers": [],
        "decliners": [],
    }
    text = official_form.findings(context | {"score_format": INDEX_01}, [])[1]
    assert text == "综合得分最高的是甲（0.83412 分），最低的是乙（0.83407 分），相差 0.00005 分。"
    assert "并列，0.83 分" in official_form.findings(context, [])[1]  # at 2 decimals they would tie


def test_the_derivation_maps_onto_the_scale() -> None:
    cell = {
        "normalisation": "min_max",
        "direction": "higher",
        "scored_value": 7.5,
        "set_min": 5.0,
        "set_max": 10.0,
        "set_n": 3,
        "score": 0.5,
    }
    line = derivation.normalisation_line(cell, INDEX_01)
    assert line.endswith("100 × (7.5 − 5) / (10 − 5)，映射到 0–1 分制：0 + (1 − 0) × 上式 / 100 = 0.5")
    assert derivation.normalisation_line(cell | {"score": 50.0}).endswith("100 × (7.5 − 5) / (10 − 5) = 50")


def test_the_format_is_read_from_the_marts() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    # a warehouse built before the settings reached dim_catalogue_node: the defaults
    con.execute("CREATE TABLE marts.dim_catalogue_node(node_id VARCHAR, level INTEGER, catalogue_version VARCHAR)")
    con.execute("INSERT INTO marts.dim_catalogue_node VALUES ('composite', 0, 'v1')")
    assert edition_rows.score_format(con, {"version": "v1"}) == DEFAULT
    con.execute("DROP TABLE marts.dim_catalogue_node")
    con.execute(
        "CREATE TABLE marts.dim_catalogue_node(node_id VARCHAR, level INTEGER, catalogue_version VARCHAR,"
        " scale_lo DOUBLE, scale_hi DOUBLE, rank_decimals INTEGER, round_mode VARCHAR)"
    )
    con.execute(
        "INSERT INTO marts.dim_catalogue_node VALUES ('composite', 0, 'v1', 0, 100, 2, 'engine'),"
        " ('composite', 0, 'v2', 0, 1, 5, 'r'), ('P1', 1, 'v2', 0, 1, 5, 'r')"
    )
    assert edition_rows.score_format(con, {"version": "v2"}) == INDEX_01
    assert edition_rows.score_format(con, {"version": "v1"}) == DEFAULT
    assert edition_rows.score_format(con, {"version": "v9"}) == DEFAULT


def test_the_tie_rule_is_worded_as_the_version_sets_it() -> None:
    assert DEFAULT.ties_text == "取最小名次" and ScoreFormat.of(rank_ties=None).ties == "min"
    assert ScoreFormat.of(rank_ties="dense").ties_text == "取相同名次，其后名次连续"
    assert "rank_exact" in ScoreFormat.of(rank_ties="average").ties_text
