"""Reference data an analyst edits: departments, the indicator catalogue, holidays.

Each YAML file is validated with pydantic when it is loaded; a mistake is reported
with the file and the path inside it. Validated data is flattened into small
Parquet tables that dbt reads as sources, like every other input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal, Union

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator


class ConfigError(ValueError):
    """A configuration file is wrong. The message names the file and the place."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml_model(path: Path, model: type[BaseModel]) -> BaseModel:
    """Read `path` and validate it as `model`, turning errors into ConfigError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_place(raw, err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def _place(raw: object, loc: tuple) -> str:
    """Where an error is, as a person finds it in the file: the keys, with the id or
    indicator of each tree node on the way (versions[0] › composite › citizen › weight)."""
    parts: list[str] = []
    node = raw
    previous: object = None
    for step in loc:
        after_index, previous = isinstance(previous, int), step
        if after_index and step in ("aggregate", "indicator"):
            continue  # the union's tag, not a key in the file
        if isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
            named = node.get("id") or node.get("indicator") or node.get("version") if isinstance(node, dict) else None
            parts.append(str(named) if named else f"[{step}]")
        elif isinstance(node, dict) and step in node:
            node = node[step]
            if step not in ("children", "tree"):
                parts.append(str(step))
        elif isinstance(step, str) and step not in ("aggregate", "indicator"):
            parts.append(step)  # a missing or extra key
    return " › ".join(parts) or "(top)"


# ---------------------------------------------------------------- departments

class Department(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    peer_group: str = Field(min_length=1)
    parent_id: str | None = None
    valid_from: dt.date
    valid_to: dt.date | None = None
    merged_into: str | None = None
    aliases: list[str] = []

    @model_validator(mode="after")
    def _dates_in_order(self) -> "Department":
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"{self.id}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class DepartmentRegistry(_Strict):
    departments: list[Department] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> "DepartmentRegistry":
        ids = [d.id for d in self.departments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate department ids: {duplicates}")
        known = set(ids)
        for d in self.departments:
            for ref in (d.parent_id, d.merged_into):
                if ref is not None and ref not in known:
                    raise ValueError(f"{d.id}: refers to unknown department {ref}")
        names: dict[str, str] = {}
        for d in self.departments:
            for name in [d.name, *d.aliases]:
                if names.setdefault(name, d.id) != d.id:
                    raise ValueError(f"name {name!r} is used by both {names[name]} and {d.id}")
        return self


# ---------------------------------------------------------------- catalogue

Normalisation = Literal["min_max", "z_score", "distance_to_target", "goalposts", "percentile_rank"]


class Warning_(_Strict):
    amber: float | None = None
    red: float | None = None


class IndicatorNode(_Strict):
    indicator: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    weight: float = Field(gt=0)
    unit: str
    direction: Literal["higher", "lower"]
    normalisation: Normalisation
    target: float | None = None
    goalposts: tuple[float, float] | None = None
    min_obs: int = Field(default=1, ge=1)
    warning: Warning_ | None = None

    @model_validator(mode="after")
    def _method_has_parameters(self) -> "IndicatorNode":
        if self.normalisation == "distance_to_target" and not self.target:
            raise ValueError(f"{self.indicator}: distance_to_target needs a non-zero target")
        if self.normalisation == "goalposts":
            if self.goalposts is None or self.goalposts[0] >= self.goalposts[1]:
                raise ValueError(f"{self.indicator}: goalposts needs [lo, hi] with lo < hi")
        return self


def _node_kind(value: object) -> str:
    if isinstance(value, IndicatorNode) or (isinstance(value, dict) and "indicator" in value):
        return "indicator"
    return "aggregate"


class AggregateNode(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    weight: float = Field(default=1, gt=0)
    aggregation: Literal["arithmetic", "geometric"] = "arithmetic"
    # A child with an `indicator` key is an indicator, any other an aggregate node;
    # deciding up front keeps error messages about the one the analyst meant.
    children: list[
        Annotated[
            Union[Annotated["AggregateNode", Tag("aggregate")], Annotated[IndicatorNode, Tag("indicator")]],
            Discriminator(_node_kind),
        ]
    ] = Field(min_length=1)


class Grade(_Strict):
    grade: str
    min_score: float = Field(ge=0, le=100)
    max_share: float | None = Field(default=None, gt=0, le=1)


class AdjustmentCaps(_Strict):
    bonus: float = Field(ge=0)
    penalty: float = Field(ge=0)


class CatalogueVersion(_Strict):
    version: str
    effective_from: dt.date
    reason: str = Field(min_length=1)
    grades: list[Grade] = Field(min_length=1)
    adjustment_caps: AdjustmentCaps
    tree: AggregateNode

    @model_validator(mode="after")
    def _tree_is_consistent(self) -> "CatalogueVersion":
        if self.tree.id != "composite":
            raise ValueError("the root of the tree must have id 'composite'")
        seen: set[str] = set()
        for node, _parent, _level in walk(self.tree):
            key = node.indicator if isinstance(node, IndicatorNode) else node.id
            if key in seen:
                raise ValueError(f"node id {key!r} appears twice in version {self.version}")
            seen.add(key)
        scores = [g.min_score for g in self.grades]
        if scores != sorted(scores, reverse=True) or scores[-1] != 0:
            raise ValueError("grades must be listed from best to worst and the last must start at 0")
        return self


class Catalogue(_Strict):
    versions: list[CatalogueVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions_in_order(self) -> "Catalogue":
        starts = [v.effective_from for v in self.versions]
        if starts != sorted(set(starts)):
            raise ValueError("versions must be in order of effective_from, without two on one date")
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError("version names must be unique")
        return self


def walk(node: AggregateNode, parent: str | None = None, level: int = 0):
    """Yield (node, parent id, level) for the whole tree, root first."""
    yield node, parent, level
    for child in node.children:
        if isinstance(child, AggregateNode):
            yield from walk(child, node.id, level + 1)
        else:
            yield child, node.id, level + 1


# ---------------------------------------------------------------- holidays

DateOrRange = Union[dt.date, tuple[dt.date, dt.date]]


class HolidayYear(_Strict):
    holidays: list[DateOrRange] = []
    workdays: list[dt.date] = []


class HolidayCalendar(_Strict):
    years: dict[int, HolidayYear]

    def days(self) -> list[tuple[dt.date, bool]]:
        """(date, is_working_day) for every listed exception."""
        out: list[tuple[dt.date, bool]] = []
        for year in self.years.values():
            for item in year.holidays:
                first, last = item if isinstance(item, tuple) else (item, item)
                day = first
                while day <= last:
                    out.append((day, False))
                    day += dt.timedelta(days=1)
            out.extend((d, True) for d in year.workdays)
        return sorted(out)


# ---------------------------------------------------------------- loading

def load_departments(reference_dir: Path) -> DepartmentRegistry:
    return load_yaml_model(reference_dir / "departments.yaml", DepartmentRegistry)  # type: ignore[return-value]


def load_catalogue(reference_dir: Path) -> Catalogue:
    return load_yaml_model(reference_dir / "catalogue.yaml", Catalogue)  # type: ignore[return-value]


def load_holidays(reference_dir: Path) -> HolidayCalendar:
    return load_yaml_model(reference_dir / "holidays.yaml", HolidayCalendar)  # type: ignore[return-value]


def reference_tables(reference_dir: Path) -> dict[str, pa.Table]:
    """Validate every reference file and flatten it into the tables dbt reads."""
    registry = load_departments(reference_dir)
    catalogue = load_catalogue(reference_dir)
    holidays = load_holidays(reference_dir)

    departments = pa.Table.from_pylist(
        [
            {
                "department_id": d.id,
                "department_name": d.name,
                "peer_group": d.peer_group,
                "parent_id": d.parent_id,
                "valid_from": d.valid_from,
                "valid_to": d.valid_to,
                "merged_into": d.merged_into,
            }
            for d in registry.departments
        ],
        schema=pa.schema(
            [
                ("department_id", pa.string()),
                ("department_name", pa.string()),
                ("peer_group", pa.string()),
                ("parent_id", pa.string()),
                ("valid_from", pa.date32()),
                ("valid_to", pa.date32()),
                ("merged_into", pa.string()),
            ]
        ),
    )

    nodes, grades, settings_rows = [], [], []
    for i, version in enumerate(catalogue.versions):
        following = catalogue.versions[i + 1].effective_from if i + 1 < len(catalogue.versions) else None
        effective_to = following - dt.timedelta(days=1) if following else dt.date(9999, 12, 31)
        common = {
            "catalogue_version": version.version,
            "effective_from": version.effective_from,
            "effective_to": effective_to,
        }
        for node, parent, level in walk(version.tree):
            if isinstance(node, IndicatorNode):
                warning = node.warning or Warning_()
                nodes.append(
                    common
                    | {
                        "node_id": node.indicator,
                        "node_name": node.name,
                        "parent_id": parent,
                        "level": level,
                        "is_indicator": True,
                        "weight": node.weight,
                        "aggregation": None,
                        "direction": node.direction,
                        "unit": node.unit,
                        "normalisation": node.normalisation,
                        "target": node.target,
                        "goalpost_lo": node.goalposts[0] if node.goalposts else None,
                        "goalpost_hi": node.goalposts[1] if node.goalposts else None,
                        "min_obs": node.min_obs,
                        "warn_amber": warning.amber,
                        "warn_red": warning.red,
                    }
                )
            else:
                nodes.append(
                    common
                    | {
                        "node_id": node.id,
                        "node_name": node.name,
                        "parent_id": parent,
                        "level": level,
                        "is_indicator": False,
                        "weight": node.weight,
                        "aggregation": node.aggregation,
                        "direction": None,
                        "unit": None,
                        "normalisation": None,
                        "target": None,
                        "goalpost_lo": None,
                        "goalpost_hi": None,
                        "min_obs": None,
                        "warn_amber": None,
                        "warn_red": None,
                    }
                )
        for order, grade in enumerate(version.grades):
            grades.append(
                common
                | {"grade_order": order, "grade": grade.grade, "min_score": grade.min_score, "max_share": grade.max_share}
            )
        settings_rows.append(
            common
            | {
                "reason": version.reason,
                "bonus_cap": version.adjustment_caps.bonus,
                "penalty_cap": version.adjustment_caps.penalty,
            }
        )

    calendar = pa.Table.from_pylist(
        [{"calendar_date": d, "is_working_day": w} for d, w in holidays.days()],
        schema=pa.schema([("calendar_date", pa.date32()), ("is_working_day", pa.bool_())]),
    )
    return {
        "departments": departments,
        "catalogue_nodes": pa.Table.from_pylist(nodes, schema=_NODE_SCHEMA),
        "catalogue_grades": pa.Table.from_pylist(grades, schema=_GRADE_SCHEMA),
        "catalogue_versions": pa.Table.from_pylist(settings_rows, schema=_VERSION_SCHEMA),
        "calendar_exceptions": calendar,
    }


_VERSIONED = [("catalogue_version", pa.string()), ("effective_from", pa.date32()), ("effective_to", pa.date32())]
_NODE_SCHEMA = pa.schema(
    _VERSIONED
    + [
        ("node_id", pa.string()),
        ("node_name", pa.string()),
        ("parent_id", pa.string()),
        ("level", pa.int32()),
        ("is_indicator", pa.bool_()),
        ("weight", pa.float64()),
        ("aggregation", pa.string()),
        ("direction", pa.string()),
        ("unit", pa.string()),
        ("normalisation", pa.string()),
        ("target", pa.float64()),
        ("goalpost_lo", pa.float64()),
        ("goalpost_hi", pa.float64()),
        ("min_obs", pa.int32()),
        ("warn_amber", pa.float64()),
        ("warn_red", pa.float64()),
    ]
)
_GRADE_SCHEMA = pa.schema(
    _VERSIONED
    + [("grade_order", pa.int32()), ("grade", pa.string()), ("min_score", pa.float64()), ("max_share", pa.float64())]
)
_VERSION_SCHEMA = pa.schema(
    _VERSIONED + [("reason", pa.string()), ("bonus_cap", pa.float64()), ("penalty_cap", pa.float64())]
)

