"""The annual appraisal's catalogue settings (pipelines/grading.py) are validated when
the catalogue loads: a mistake names its place; valid settings reach the tables dbt
reads (the scoring itself is checked by the dbt unit tests in _unit_tests__annual.yml
and _unit_tests__rankings.yml, and by tests/test_annual.py)."""

from __future__ import annotations

import pytest

from pipelines.reference import ConfigError, DepartmentRegistry, load_catalogue, reference_tables
from pipelines.settings import PROJECT_ROOT
from tests.test_indicator_anomalies import _catalogue_with

REFERENCE = PROJECT_ROOT / "sources" / "reference"


def _first_indicator(node: dict) -> dict:
    return node if "indicator" in node else _first_indicator(node["children"][0])


@pytest.mark.parametrize(
    ("annual", "message"),
    [
        ({"method": "averaged"}, "annual › method"),
        ({"method": "pooled", "built_up": {"periods": "quarter"}}, "built_up is set but method is not built_up"),
        ({"method": "built_up", "built_up": {"periods": "quarter", "weights": [1, 1, 1]}}, "4 needed"),
        ({"method": "built_up", "built_up": {"periods": "month", "weights": [1] * 4}}, "12 needed"),
        ({"method": "built_up", "built_up": {"weights": [1, 0, 1, 1]}}, "above 0"),
        ({"grades": [{"grade": "优秀", "min_score": 90}, {"grade": "合格", "min_score": 60}]}, "annual.grades"),
        ({"grades": [{"grade": "优秀", "min_score": 90}, {"grade": "差", "min_score": 0, "max_share": 0.1}]}, "lowest"),
        ({"quota_ties": "coin_toss"}, "annual › quota_ties"),
        ({"merged_departments": "with_parent"}, "annual › merged_departments"),
    ],
)
def test_a_wrong_annual_setting_is_a_load_error_that_names_its_place(tmp_path, annual, message):
    folder = _catalogue_with(tmp_path, lambda version: version.__setitem__("annual", annual))
    with pytest.raises(ConfigError) as error:
        load_catalogue(folder)
    assert "catalogue.yaml" in str(error.value) and message in str(error.value)


def test_annual_settings_reach_the_tables_dbt_reads(tmp_path):
    def edit(version: dict) -> None:
        version["quota_ties"] = "all_drop"
        version["annual"] = {
            "method": "built_up",
            "built_up": {"periods": "quarter", "weights": [1, 1, 1, 2]},
            "grades": [{"grade": "优秀", "min_score": 90, "max_share": 0.2}, {"grade": "合格", "min_score": 0}],
            "adjustment_caps": {"bonus": 8, "penalty": 15},
        }
        _first_indicator(version["tree"])["annual_only"] = True

    tables = reference_tables(_catalogue_with(tmp_path, edit))
    versions = tables["catalogue_versions"].to_pylist()[0]
    assert {k: versions[k] for k in ("quota_ties", "annual_quota_ties", "annual_method", "annual_periods")} == {
        "quota_ties": "all_drop",
        "annual_quota_ties": "all_drop",  # unset in annual: the version's own
        "annual_method": "built_up",
        "annual_periods": "quarter",
    }
    assert (versions["annual_bonus_cap"], versions["annual_penalty_cap"]) == (8, 15)
    assert (versions["bonus_cap"], versions["penalty_cap"]) == (5, 10)
    grades = tables["catalogue_grades"].to_pylist()
    assert [(g["applies_to"], g["grade"], g["min_score"]) for g in grades if g["applies_to"] == "year"] == [
        ("year", "优秀", 90),
        ("year", "合格", 0),
    ]
    assert [g["grade"] for g in grades if g["applies_to"] == "period"] == ["优秀", "良好", "合格", "不合格"]
    weights = tables["catalogue_annual_weights"].to_pylist()
    assert [(w["period_type"], w["position"], w["weight"]) for w in weights] == [
        ("quarter", 1, 1),
        ("quarter", 2, 1),
        ("quarter", 3, 1),
        ("quarter", 4, 2),
    ]
    annual_only = [n["node_id"] for n in tables["catalogue_nodes"].to_pylist() if n["annual_only"]]
    assert len(annual_only) == 1


def test_a_pooled_year_has_no_period_weights_and_the_sample_pools():
    tables = reference_tables(REFERENCE)
    assert tables["catalogue_annual_weights"].num_rows == 0
    assert {v["annual_method"] for v in tables["catalogue_versions"].to_pylist()} == {"pooled"}


def _registry(*departments: dict) -> DepartmentRegistry:
    return DepartmentRegistry.model_validate(
        {"departments": [{"name": d["id"] + "局", "peer_group": "g", **d} for d in departments]}
    )


def test_a_merged_department_is_scored_with_the_last_successor_it_reached_within_its_year():
    registry = _registry(
        # A into B in June, B into C in October: A's 2025 counts with C, B's with C.
        {"id": "A", "valid_from": "2020-01-01", "valid_to": "2025-06-30", "merged_into": "B"},
        {"id": "B", "valid_from": "2020-01-01", "valid_to": "2025-10-31", "merged_into": "C"},
        {"id": "C", "valid_from": "2025-01-01"},
        # D into E in 2024, E into C in 2025: D's 2024 counts with E only.
        {"id": "D", "valid_from": "2020-01-01", "valid_to": "2024-03-31", "merged_into": "E"},
        {"id": "E", "valid_from": "2020-01-01", "valid_to": "2025-03-31", "merged_into": "C"},
        # Merged on 31 December: in office all year, scored on its own.
        {"id": "F", "valid_from": "2020-01-01", "valid_to": "2025-12-31", "merged_into": "C"},
        # Into a department set up a month after: no successor the day after, its own months.
        {"id": "G", "valid_from": "2020-01-01", "valid_to": "2025-05-31", "merged_into": "H"},
        {"id": "H", "valid_from": "2025-07-01"},
        # Split (no merged_into): its own months.
        {"id": "K", "valid_from": "2020-01-01", "valid_to": "2025-05-31"},
    )
    assert registry.successors_in_year() == {"A": "C", "B": "C", "D": "E", "E": "C"}


def test_the_successor_rule_reaches_the_departments_table_dbt_reads():
    tables = reference_tables(REFERENCE)
    departments = {r["department_id"]: r for r in tables["departments"].to_pylist()}
    merged = [d for d in departments.values() if d["merged_into"] and d["valid_to"] and d["valid_to"].month < 12]
    assert merged, "the sample registry has a department merged during a year"
    assert all(d["successor_in_year"] == d["merged_into"] for d in merged)
    assert all(d["successor_in_year"] is None for d in departments.values() if not d["merged_into"])
