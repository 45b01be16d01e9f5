"""The catalogue settings that follow a published method exactly (docs/methodology.md
§8a): their defaults reproduce the sample's behaviour, they reach the tables dbt
reads, and a wrong one is a load error that names its place in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.reference import Catalogue, ConfigError, load_yaml_model, reference_tables
from pipelines.settings import PROJECT_ROOT

BASE = {
    "version": "v1",
    "effective_from": "2025-01-01",
    "reason": "test",
    "grades": [{"grade": "A", "min_score": 60}, {"grade": "B", "min_score": 0}],
    "adjustment_caps": {"bonus": 0, "penalty": 0},
}


def indicator(name: str, **extra: object) -> dict:
    return {
        "indicator": name,
        "name": name,
        "unit": "score",
        "direction": "higher",
        "normalisation": "min_max",
    } | extra


def tree(*children: dict, **extra: object) -> dict:
    return {"id": "composite", "name": "Index", "children": list(children)} | extra


def load(tmp_path: Path, version: dict) -> Catalogue:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"versions": [BASE | version]}, allow_unicode=True), encoding="utf-8")
    return load_yaml_model(path, Catalogue)  # type: ignore[return-value]


def test_defaults_are_todays(tmp_path: Path) -> None:
    version = load(tmp_path, {"tree": tree(indicator("a", weight=2), indicator("b", weight=1))}).versions[0]
    assert version.scale == (0.0, 100.0)
    assert (version.round, version.round_mode, version.min_children) == (None, "engine", 1)
    assert (version.rank_decimals, version.ties, version.stored_decimals) == (2, "min", 4)


def test_the_sample_catalogue_flattens_to_the_defaults() -> None:
    tables = reference_tables(PROJECT_ROOT / "sources" / "reference")
    versions = tables["catalogue_versions"].to_pylist()
    assert {(v["scale_lo"], v["scale_hi"], v["round_digits"], v["round_mode"]) for v in versions} == {
        (0.0, 100.0, None, "engine")
    }
    assert {(v["rank_decimals"], v["rank_ties"], v["stored_decimals"], v["min_children"]) for v in versions} == {
        (2, "min", 4, 1)
    }
    nodes = tables["catalogue_nodes"].to_pylist()
    assert {n["round_digits"] for n in nodes} == {None}
    assert {n["min_children"] for n in nodes if not n["is_indicator"]} == {1}


def test_settings_reach_the_tables(tmp_path: Path) -> None:
    version = {
        "round": 2,
        "round_mode": "r",
        "min_children": 2,
        "rank_decimals": 1,
        "ties": "average",
        "stored_decimals": 2,
        "scale": [0, 1],
        "grades": [{"grade": "A", "min_score": 0.6}, {"grade": "B", "min_score": 0}],
        "tree": tree(
            {"id": "p", "name": "P", "round": 3, "min_children": 1, "children": [indicator("a"), indicator("b")]},
            {"id": "q", "name": "Q", "children": [indicator("c"), indicator("d", normalisation="identity")]},
        ),
    }
    reference = tmp_path / "reference"
    reference.mkdir()
    load(reference, version)  # writes catalogue.yaml there
    for name in ("departments.yaml", "holidays.yaml"):
        (reference / name).write_text((PROJECT_ROOT / "sources" / "reference" / name).read_text(encoding="utf-8"))
    tables = reference_tables(reference)
    nodes = {n["node_id"]: n for n in tables["catalogue_nodes"].to_pylist()}
    assert (nodes["p"]["round_digits"], nodes["p"]["min_children"]) == (3, 1)  # its own
    assert (nodes["q"]["round_digits"], nodes["q"]["min_children"]) == (2, 2)  # the version's
    assert (nodes["a"]["round_digits"], nodes["a"]["round_mode"], nodes["a"]["scale_hi"]) == (2, "r", 1.0)
    assert nodes["d"]["normalisation"] == "identity"
    assert nodes["a"]["weight"] == 1.0  # unweighted children: equal weights
    (row,) = tables["catalogue_versions"].to_pylist()
    assert (row["rank_decimals"], row["rank_ties"], row["stored_decimals"]) == (1, "average", 2)
    assert (row["scale_lo"], row["scale_hi"], row["round_mode"]) == (0.0, 1.0, "r")


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            {"tree": tree({"id": "p", "name": "P", "children": [indicator("a", weight=2), indicator("b")]})},
            r"versions › v1 › p: .*p: children \['b'\] have no weight while their siblings have one",
        ),
        (
            {
                "tree": tree(
                    {"id": "p", "name": "P", "weight": 2, "children": [indicator("a")]},
                    {"id": "q", "name": "Q", "children": [indicator("b")]},
                )
            },
            r"versions › v1: .*composite: children \['q'\] have no weight",
        ),
        (
            {"stored_decimals": 1, "tree": tree(indicator("a"))},
            r"stored_decimals \(1\) cannot be fewer than rank_decimals \(2\)",
        ),
        ({"round": 11, "tree": tree(indicator("a"))}, r"v1 › round: .*less than or equal to 10"),
        ({"round_mode": "bankers", "tree": tree(indicator("a"))}, r"v1 › round_mode: Input should be"),
        ({"ties": "first", "tree": tree(indicator("a"))}, r"v1 › ties: Input should be"),
        ({"scale": [1, 0], "tree": tree(indicator("a"))}, r"scale needs \[lowest, highest\]"),
        (
            {"scale": [0, 1], "tree": tree(indicator("a"))},
            r"grade 'A': min_score 60.0 is outside the scale \[0.0, 1.0\]",
        ),
        (
            {
                "scale": [0, 1],
                "grades": [{"grade": "A", "min_score": 0}],
                "tree": tree({"id": "p", "name": "P", "aggregation": "geometric", "children": [indicator("a")]}),
            },
            r"p: geometric aggregation is only supported on the scale \[0, 100\]",
        ),
        (
            {"tree": tree({"id": "p", "name": "P", "min_children": 3, "children": [indicator("a"), indicator("b")]})},
            r"versions › v1 › p: .*min_children \(3\) exceeds its 2 children",
        ),
        ({"min_children": 0, "tree": tree(indicator("a"))}, r"v1 › min_children: .*greater than or equal to 1"),
        (
            {"tree": tree(indicator("a", normalisation="identity_ish"))},
            r"versions › v1 › a › normalisation: Input should be",
        ),
    ],
)
def test_load_errors_name_the_place(tmp_path: Path, version: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, version)
