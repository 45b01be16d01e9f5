"""Anomalies in indicator series (marts.fct_indicator_anomalies, docs/methodology.md §13f):
the catalogue settings are validated at load, the planted anomalies of the sample are
chosen from the seed and recorded, and the bulletin and department pages show the flags.

The rule itself runs in dbt: its unit tests (a seasonal series, a peer group with a flat
history) are in dbt_project/models/intermediate/_unit_tests__anomalies.yml (run by
tests/test_dbt_unit_tests.py); a whole sample city with its planted spikes and shifts is
tests/test_indicator_anomalies_planted.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.reference import ConfigError, load_catalogue, reference_tables
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "sources" / "reference"


def _catalogue_with(tmp_path: Path, edit) -> Path:
    """A copy of the reference folder whose catalogue's first version is edited."""
    folder = tmp_path / "reference"
    folder.mkdir()
    for path in REFERENCE.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    raw = yaml.safe_load((REFERENCE / "catalogue.yaml").read_text(encoding="utf-8"))
    edit(raw["versions"][0])
    (folder / "catalogue.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return folder


def _indicator(version: dict, indicator_id: str) -> dict:
    def walk(node):
        if node.get("indicator") == indicator_id:
            return node
        for child in node.get("children", []):
            found = walk(child)
            if found:
                return found
        return None

    return walk(version["tree"])


def test_the_sample_catalogue_sets_the_anomalies_and_an_indicator_can_override_them(tmp_path):
    def edit(version):
        _indicator(version, "online_rate")["anomalies"] = {"enabled": False}
        _indicator(version, "on_time_rate")["anomalies"] = {"sensitivity": 5}

    tables = reference_tables(_catalogue_with(tmp_path, edit))
    settings = tables["catalogue_versions"].to_pylist()[0]
    assert (settings["anomaly_history"], settings["anomaly_min_history"], settings["anomaly_min_peers"]) == (12, 6, 4)
    assert (settings["anomaly_seasonal_min_months"], settings["anomaly_scale_floor"]) == (24, 0.02)
    nodes = {n["node_id"]: n for n in tables["catalogue_nodes"].to_pylist()}
    assert (nodes["online_rate"]["anomaly_enabled"], nodes["online_rate"]["anomaly_sensitivity"]) == (False, 3.5)
    assert (nodes["on_time_rate"]["anomaly_enabled"], nodes["on_time_rate"]["anomaly_sensitivity"]) == (True, 5.0)
    assert (nodes["good_review_rate"]["anomaly_enabled"], nodes["good_review_rate"]["anomaly_sensitivity"]) == (
        True,
        3.5,
    )


def test_a_catalogue_without_anomalies_still_loads_and_keeps_its_change_warning_window(tmp_path):
    """Catalogues written before the anomalies existed: the own-history window is the
    change warning's, as it was."""

    def edit(version):
        del version["anomalies"]
        version["change_warning"] = {"history": 6, "min_history": 4, "amber": 2.5, "red": 3.5}

    settings = reference_tables(_catalogue_with(tmp_path, edit))["catalogue_versions"].to_pylist()[0]
    assert (settings["anomaly_history"], settings["anomaly_min_history"]) == (6, 4)
    assert (settings["change_amber"], settings["change_red"], settings["anomaly_min_peers"]) == (2.5, 3.5, 4)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda v: v["anomalies"].update(sensitivity=0), "anomalies › sensitivity: Input should be greater than 0"),
        (lambda v: v["anomalies"].update(history=1), "anomalies › history: Input should be greater than or equal to 2"),
        (lambda v: v["anomalies"].update(seasonal_min_months=12), "seasonal_min_months"),
        (lambda v: v["anomalies"].update(scale_floor=-0.1), "scale_floor"),
        (lambda v: v["anomalies"].update(min_history=13), "min_history (13) cannot exceed history (12)"),
        (lambda v: v["anomalies"].update(colour="red"), "anomalies › colour: Extra inputs are not permitted"),
        (lambda v: v["anomalies"].update(enabled="maybe"), "anomalies › enabled"),
        (
            lambda v: v["change_warning"].update(history=6),
            "change_warning.history (6) and anomalies.history (12) differ",
        ),
        (
            lambda v: _indicator(v, "on_time_rate").update(anomalies={"sensitivity": -1}),
            "on_time_rate",
        ),
        (lambda v: _indicator(v, "on_time_rate").update(anomalies={"history": 3}), "Extra inputs are not permitted"),
    ],
)
def test_anomaly_settings_are_checked_when_the_catalogue_loads(tmp_path, edit, expected):
    folder = _catalogue_with(tmp_path, edit)
    with pytest.raises(ConfigError) as error:
        load_catalogue(folder)
    assert "catalogue.yaml" in str(error.value) and expected in str(error.value), str(error.value)


def test_planted_anomalies_are_chosen_from_the_seed_among_clean_departments(tmp_path):
    def generate(out, seed):
        return generate_city(
            out,
            departments_yaml=REFERENCE / "departments.yaml",
            seed=seed,
            first_month="2025-01",
            last_month="2025-09",
            transactions=6_000,
        )

    first, again = generate(tmp_path / "a", 7), generate(tmp_path / "b", 7)
    assert first.anomalies == again.anomalies
    assert [p["kind"] for p in first.anomalies] == ["spike", "level_shift", "online_shift"]
    gamed = {d for departments in first.gaming.values() for d in departments}
    for plant in first.anomalies:
        assert first.profiles[plant["department_id"]] == "stable" and plant["department_id"] not in gamed
        assert plant["first_month"] >= "2025-07"  # at least 6 months of history before it
    assert len({p["department_id"] for p in first.anomalies}) == 3
    assert generate(tmp_path / "c", 8).anomalies != first.anomalies
