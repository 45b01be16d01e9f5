"""Reference data an analyst edits: departments, the indicator catalogue, holidays.

Each YAML file is validated with pydantic when it is loaded; a mistake is reported
with the file and the path inside it. Validated data is flattened into small
Parquet tables that dbt reads as sources, like every other input.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from pipelines.grading import (
    AdjustmentCaps,
    Annual,
    Grade,
    QuotaTies,
    annual_weight_rows,
    grade_problem,
    grade_rows,
    version_columns,
)


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


FIRST_DAY, LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)


class Alias(_Strict):
    """A name or code a department is known by, and when: a former name until the day
    it changed, an agency code from the day it was issued. Unbounded ends: always."""

    name: str = Field(min_length=1)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Alias:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"alias {self.name!r}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class Department(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    peer_group: str = Field(min_length=1)
    parent_id: str | None = None
    valid_from: dt.date
    valid_to: dt.date | None = None
    merged_into: str | None = None
    # Former names and abbreviations, and agency codes: a text, or {name, valid_from, valid_to}.
    aliases: list[str | Alias] = []
    codes: list[str | Alias] = []

    @model_validator(mode="after")
    def _dates_in_order(self) -> Department:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"{self.id}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    def in_office(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def references(self) -> list[tuple[str, dt.date, dt.date]]:
        """Every text naming this department in an extract, with the days it does: its
        id and name over its life, each alias and code over its own days within it."""
        life = (self.valid_from, self.valid_to or LAST_DAY)
        found = [(self.id, *life), (self.name, *life)]
        for alias in [*self.aliases, *self.codes]:
            if isinstance(alias, str):
                found.append((alias, *life))
            else:
                start = max(alias.valid_from or FIRST_DAY, life[0])
                end = min(alias.valid_to or LAST_DAY, life[1])
                found.append((alias.name, start, end))
        return found


class DepartmentRegistry(_Strict):
    departments: list[Department] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> DepartmentRegistry:
        ids = [d.id for d in self.departments]
        duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)  # linear: a province has thousands
        if duplicates:
            raise ValueError(f"duplicate department ids: {duplicates}")
        known = set(ids)
        for d in self.departments:
            for ref in (d.parent_id, d.merged_into):
                if ref is not None and ref not in known:
                    raise ValueError(f"{d.id}: refers to unknown department {ref}")
        # One text may name two departments at different times (a name handed on after a
        # reorganisation), never on the same day.
        held: dict[str, list[tuple[str, dt.date, dt.date]]] = {}
        for d in self.departments:
            for text, start, end in d.references():
                for other, other_start, other_end in held.get(text, []):
                    if other != d.id and start <= other_end and other_start <= end:
                        raise ValueError(
                            f"name {text!r} is used by both {other} and {d.id} from {max(start, other_start)} "
                            f"to {min(end, other_end)}; give each its own days (aliases: {{name, valid_from, valid_to}})"
                        )
                held.setdefault(text, []).append((d.id, start, end))
        return self

    def successors_in_year(self) -> dict[str, str]:
        """For each department merged before its last year's last day, the department it
        is scored with for that year (`annual.merged_departments: successor`): the one it
        merged into, followed on while that one merged again in the same year. A merger
        into a department not in office the day after has no successor."""
        by_id = {d.id: d for d in self.departments}
        found = {}
        for department in self.departments:
            if department.merged_into is None or department.valid_to is None:
                continue
            year_end = dt.date(department.valid_to.year, 12, 31)
            current, seen = department, {department.id}
            while current.merged_into is not None and current.valid_to is not None and current.valid_to < year_end:
                following = by_id[current.merged_into]
                if following.id in seen or not following.in_office(current.valid_to + dt.timedelta(days=1)):
                    break
                current = following
                seen.add(current.id)
            if current is not department:
                found[department.id] = current.id
        return found


# ---------------------------------------------------------------- catalogue

MAX_TREATMENT_POINTS = 10  # the SQL unrolls the skew/kurtosis rule this many times
MAX_TREE_DEPTH = 8  # levels below the root the SQL aggregates (macro aggregated_tree_ctes)
Normalisation = Literal["min_max", "z_score", "distance_to_target", "goalposts", "percentile_rank", "identity"]
MAX_ROUND_DIGITS = 10  # scores are kept at 10 decimals ("full precision"), so no setting goes past it
# How a score is rounded (pipelines/rounding.py, macro round_score): `engine` is the SQL
# engine's round() on the double (today's default); half_up and half_even act on the decimal
# value shown (15 significant digits, as Excel); `r` is R (>= 4.0.0)'s round().
RoundMode = Literal["engine", "half_up", "half_even", "r"]
RoundDigits = Annotated[int, Field(ge=0, le=MAX_ROUND_DIGITS)]
# Ids are what analysts and published indices use (good_review_rate, LPI, CO2).
NODE_ID = r"^[A-Za-z][A-Za-z0-9_]*$"


class Outliers(_Strict):
    """How extreme values are treated before normalisation (OECD/JRC handbook, step 4).

    none: untreated. winsorise: values beyond the `lower`/`upper` percentiles of the
    period's values are set to those percentiles. skew_kurtosis (COINr's rule): while
    |skewness| > `skewness` and kurtosis > `kurtosis` (sample-adjusted estimators),
    the most extreme value on the side of the skew, with its ties, is set to the next
    value in; repeated at most `max_points` times."""

    method: Literal["none", "winsorise", "skew_kurtosis"] = "none"
    lower: float = Field(default=0.05, ge=0, le=0.5)
    upper: float = Field(default=0.95, ge=0.5, le=1)
    skewness: float = Field(default=2.0, gt=0)
    kurtosis: float = Field(default=3.5, gt=0)
    max_points: int = Field(default=5, ge=1, le=MAX_TREATMENT_POINTS)


class MissingData(_Strict):
    """What stands in for a missing value (none, or below the minimum sample).

    reweight: nothing; the parent node shares the indicator's weight among the
    children present. group_mean: the mean of the department's peer group in the
    same period (COINr's indgroup_mean). last_observed: the department's latest value
    from at most `max_lookback` earlier periods. Every imputed value is flagged."""

    method: Literal["reweight", "group_mean", "last_observed"] = "reweight"
    max_lookback: int = Field(default=3, ge=1, le=24)


class Treatment(_Strict):
    outliers: Outliers = Outliers()
    missing: MissingData = MissingData()


class Robustness(_Strict):
    """Seeded Monte Carlo over the method choices (OECD/JRC handbook, step 7).

    Each draw multiplies every weight by a factor drawn uniformly from
    [1 - weight_perturbation, 1 + weight_perturbation], and picks one normalisation
    and one aggregation from the lists ('catalogue' keeps each node's own). The
    published scores are the nominal choice; the draws give each department's
    5th-95th percentile rank band."""

    draws: int = Field(default=1000, ge=1, le=20000)
    seed: int = 20250101
    weight_perturbation: float = Field(default=0.25, ge=0, lt=1)
    normalisations: list[Literal["catalogue", "min_max", "z_score", "percentile_rank"]] = ["catalogue"]
    aggregations: list[Literal["catalogue", "arithmetic", "geometric"]] = ["catalogue"]


class BottomRule(_Strict):
    """The "talk after two bottom months" rule (约谈): flag a department ranked in the
    bottom `bottom_n` for `periods` periods running."""

    bottom_n: int = Field(default=3, ge=1)
    periods: int = Field(default=2, ge=1, le=12)


class ChangeWarning(_Strict):
    """An abnormal change against the department's own history: a value more than
    `amber` (or `red`) standard deviations from its mean over the last `history`
    periods, when at least `min_history` of them have a value."""

    history: int = Field(default=6, ge=2, le=24)
    min_history: int = Field(default=4, ge=2)
    amber: float = Field(default=2.5, gt=0)
    red: float = Field(default=3.5, gt=0)


class Anomalies(_Strict):
    """Anomalies in indicator series (docs/methodology.md §13f): a value far from the
    department's own recent history (robust z: median and 1.4826 × MAD of the previous
    `history` periods of its type, at least `min_history` of them; seasonal when
    there are `seasonal_min_months` months of monthly history) or from its peer group in
    the period (at least `min_peers` other departments, else the city). The scale is
    never below `scale_floor` × the indicator's level, so a flat history does not turn
    a tiny move into an infinite z. Flagged at |z| >= `sensitivity`. `history` and
    `min_history` count periods of the type (months, or quarters). Left unset, they take
    the change warning's (whose statistic is this own-history z)."""

    enabled: bool = True
    history: int | None = Field(default=None, ge=2, le=36)
    min_history: int | None = Field(default=None, ge=2)
    sensitivity: float = Field(default=3.5, gt=0, le=20)
    min_peers: int = Field(default=4, ge=2)
    seasonal_min_months: int = Field(default=24, ge=24, le=120)
    scale_floor: float = Field(default=0.02, ge=0, le=1)
    peer: bool = True

    @model_validator(mode="after")
    def _window_is_consistent(self) -> Anomalies:
        if self.history is not None and self.min_history is not None and self.min_history > self.history:
            raise ValueError(f"min_history ({self.min_history}) cannot exceed history ({self.history})")
        return self


class IndicatorAnomalies(_Strict):
    """An indicator's override of the version's `anomalies`: off, or another sensitivity."""

    enabled: bool | None = None
    sensitivity: float | None = Field(default=None, gt=0, le=20)


class Warning_(_Strict):
    amber: float | None = None
    red: float | None = None


class IndicatorNode(_Strict):
    indicator: str = Field(pattern=NODE_ID)
    name: str
    # Relative within the parent. Unset: 1, but only when no sibling has a weight
    # either (equal weights); a parent mixing weighted and unweighted children is an error.
    weight: float = Field(default=1, gt=0)
    unit: str
    direction: Literal["higher", "lower"]
    normalisation: Normalisation
    target: float | None = None
    goalposts: tuple[float, float] | None = None
    min_obs: int = Field(default=1, ge=1)
    warning: Warning_ | None = None
    # Divide the value by another series of the same department and period (GDP,
    # population, area) before anything else, as a per-capita or per-GDP figure.
    denominator: str | None = Field(default=None, pattern=NODE_ID)
    # The values the indicator can take, [lower, upper] (null: unbounded on that side).
    # Forecast intervals stay inside them. Unset: [0, 100] for a unit of "%", else unbounded.
    bounds: tuple[float | None, float | None] | None = None
    # How the bulletin states a change of the value: `points` (个百分点, a rate's
    # difference), `score` (分) or `relative` (percent of the earlier value). Unset: from
    # the unit, points for "%", score for 分, relative otherwise (amounts, durations).
    change: Literal["points", "score", "relative"] | None = None
    # Overrides of the version's `treatment` defaults for this indicator.
    outliers: Outliers | None = None
    missing: MissingData | None = None
    # Override of the version's `anomalies` (§13f): `{enabled: false}` or a sensitivity.
    anomalies: IndicatorAnomalies | None = None
    # Scored for the year only (a year-end 民主测评): months and quarters leave it out,
    # its weight shared among its siblings as a missing child's (§9b).
    annual_only: bool = False

    @model_validator(mode="after")
    def _method_has_parameters(self) -> IndicatorNode:
        if self.normalisation == "distance_to_target" and not self.target:
            raise ValueError(f"{self.indicator}: distance_to_target needs a non-zero target")
        if self.normalisation == "goalposts":
            if self.goalposts is None or self.goalposts[0] >= self.goalposts[1]:
                raise ValueError(f"{self.indicator}: goalposts needs [lo, hi] with lo < hi")
        lower, upper = self.value_bounds
        if lower is not None and upper is not None and lower >= upper:
            raise ValueError(f"{self.indicator}: bounds needs [lower, upper] with lower < upper (null: unbounded)")
        return self

    @property
    def value_bounds(self) -> tuple[float | None, float | None]:
        """`bounds`, or its default: a percentage lies in [0, 100], other units are unbounded."""
        if self.bounds is not None:
            return self.bounds
        return (0.0, 100.0) if self.unit.strip() == "%" else (None, None)

    @property
    def change_basis(self) -> str:
        """`change`, or its default from the unit."""
        if self.change is not None:
            return self.change
        return {"%": "points", "分": "score"}.get(self.unit.strip(), "relative")


def _node_kind(value: object) -> str:
    if isinstance(value, IndicatorNode) or (isinstance(value, dict) and "indicator" in value):
        return "indicator"
    return "aggregate"


class AggregateNode(_Strict):
    id: str = Field(pattern=NODE_ID)
    name: str
    weight: float = Field(default=1, gt=0)
    aggregation: Literal["arithmetic", "geometric"] = "arithmetic"
    # Round this node's score to so many decimals before it is aggregated further
    # (unset: the version's `round`); fewer than `min_children` children present: no score
    # (unset: the version's `min_children`).
    round: RoundDigits | None = None
    min_children: int | None = Field(default=None, ge=1)
    # A child with an `indicator` key is an indicator, any other an aggregate node;
    # deciding up front keeps error messages about the one the analyst meant.
    children: list[
        Annotated[
            Annotated[AggregateNode, Tag("aggregate")] | Annotated[IndicatorNode, Tag("indicator")],
            Discriminator(_node_kind),
        ]
    ] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_all_or_none(self) -> AggregateNode:
        weighted = ["weight" in child.model_fields_set for child in self.children]
        if any(weighted) and not all(weighted):
            unweighted = [_key(c) for c, w in zip(self.children, weighted) if not w]
            raise ValueError(
                f"{self.id}: children {unweighted} have no weight while their siblings have one;"
                " give every child of a node a weight, or none (equal weights)"
            )
        if self.min_children is not None and self.min_children > len(self.children):
            raise ValueError(f"{self.id}: min_children ({self.min_children}) exceeds its {len(self.children)} children")
        return self


def _key(node: IndicatorNode | AggregateNode) -> str:
    return node.indicator if isinstance(node, IndicatorNode) else node.id


class CatalogueVersion(_Strict):
    version: str
    effective_from: dt.date
    reason: str = Field(min_length=1)
    grades: list[Grade] = Field(min_length=1)
    adjustment_caps: AdjustmentCaps
    quota_ties: QuotaTies = "department_id"
    annual: Annual = Annual()
    treatment: Treatment = Treatment()
    robustness: Robustness = Robustness()
    bottom_rule: BottomRule = BottomRule()
    change_warning: ChangeWarning = ChangeWarning()
    anomalies: Anomalies = Anomalies()
    # Following a published method exactly (docs/methodology.md §8a). Defaults: today's.
    scale: tuple[float, float] = (0.0, 100.0)  # the scores' range, [lowest, highest]
    round: RoundDigits | None = None  # round every score (indicator and node) to so many decimals
    round_mode: RoundMode = "engine"
    min_children: int = Field(default=1, ge=1)  # fewer children present: the node has no score
    rank_decimals: RoundDigits = 2  # ranks and grades are taken on the score rounded to this
    ties: Literal["min", "dense", "average"] = "min"
    stored_decimals: RoundDigits = 4  # scores in the marts; not fewer than rank_decimals
    tree: AggregateNode

    @model_validator(mode="after")
    def _tree_is_consistent(self) -> CatalogueVersion:
        if self.tree.id != "composite":
            raise ValueError("the root of the tree must have id 'composite'")
        lo, hi = self.scale
        if not lo < hi:
            raise ValueError(f"scale needs [lowest, highest] with lowest < highest, not {list(self.scale)}")
        if self.stored_decimals < self.rank_decimals:
            raise ValueError(
                f"stored_decimals ({self.stored_decimals}) cannot be fewer than rank_decimals ({self.rank_decimals}):"
                " the marts would store less than the ranks were taken on"
            )
        if self.scale != (0.0, 100.0):
            for node, _parent, _level in walk(self.tree):
                if isinstance(node, AggregateNode) and node.aggregation == "geometric":
                    raise ValueError(
                        f"{node.id}: geometric aggregation is only supported on the scale [0, 100] (its inputs are"
                        " rescaled to [1, 100])"
                    )
        seen: set[str] = set()
        for node, _parent, _level in walk(self.tree):
            key = node.indicator if isinstance(node, IndicatorNode) else node.id
            if key in seen:
                raise ValueError(f"node id {key!r} appears twice in version {self.version}")
            seen.add(key)
        for where, grades in (("grades", self.grades), ("annual.grades", self.annual.grades or self.grades)):
            if problem := grade_problem(grades, lo):
                raise ValueError(f"{where}: {problem}")
            for g in grades:
                if not lo <= g.min_score <= hi:
                    raise ValueError(
                        f"{where}: grade {g.grade!r}: min_score {g.min_score} is outside the scale {list(self.scale)}"
                    )
        window = self.anomaly_window()
        own_window = self.anomalies.history is not None or self.anomalies.min_history is not None
        for name in ("history", "min_history"):
            mine, theirs = getattr(self.anomalies, name), getattr(self.change_warning, name)
            if mine is not None and name in self.change_warning.model_fields_set and mine != theirs:
                raise ValueError(
                    f"change_warning.{name} ({theirs}) and anomalies.{name} ({mine}) differ: the change warning is"
                    f" the anomalies' own-history statistic, so set {name} in anomalies only"
                )
        if own_window and window[1] > window[0]:
            raise ValueError(f"anomalies: min_history ({window[1]}) cannot exceed history ({window[0]})")
        deepest = max(level for _node, _parent, level in walk(self.tree))
        if deepest > MAX_TREE_DEPTH:
            raise ValueError(f"the tree is {deepest} levels deep; at most {MAX_TREE_DEPTH} are supported")
        return self

    def anomaly_window(self) -> tuple[int, int]:
        """(history, min_history) of the own-history statistic: the anomalies' own, or
        else the change warning's (one statistic serves both)."""
        return (
            self.anomalies.history if self.anomalies.history is not None else self.change_warning.history,
            self.anomalies.min_history if self.anomalies.min_history is not None else self.change_warning.min_history,
        )


class Catalogue(_Strict):
    versions: list[CatalogueVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions_in_order(self) -> Catalogue:
        starts = [v.effective_from for v in self.versions]
        if starts != sorted(set(starts)):
            raise ValueError("versions must be in order of effective_from, without two on one date")
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError("version names must be unique")
        return self


def lookback_months(catalogue: Catalogue) -> int:
    """How many months before a run's first month its models must read: one for
    rank change, more when an indicator imputes its last observed value."""
    longest = 1
    for version in catalogue.versions:
        for node, _parent, _level in walk(version.tree):
            if isinstance(node, IndicatorNode):
                missing = node.missing or version.treatment.missing
                if missing.method == "last_observed":
                    longest = max(longest, missing.max_lookback)
    return longest


def walk(node: AggregateNode, parent: str | None = None, level: int = 0):
    """Yield (node, parent id, level) for the whole tree, root first."""
    yield node, parent, level
    for child in node.children:
        if isinstance(child, AggregateNode):
            yield from walk(child, node.id, level + 1)
        else:
            yield child, node.id, level + 1


# ---------------------------------------------------------------- holidays

DateOrRange = dt.date | tuple[dt.date, dt.date]


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


def first_scorable_month(reference_dir: Path) -> dt.date:
    """Nothing can be scored before the first catalogue version takes effect."""
    return load_catalogue(reference_dir).versions[0].effective_from.replace(day=1)


def load_holidays(reference_dir: Path) -> HolidayCalendar:
    return load_yaml_model(reference_dir / "holidays.yaml", HolidayCalendar)  # type: ignore[return-value]


def reference_tables(reference_dir: Path) -> dict[str, pa.Table]:
    """Validate every reference file and flatten it into the tables dbt reads."""
    registry = load_departments(reference_dir)
    catalogue = load_catalogue(reference_dir)
    holidays = load_holidays(reference_dir)

    successors = registry.successors_in_year()
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
                "successor_in_year": successors.get(d.id),
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
                ("successor_in_year", pa.string()),
            ]
        ),
    )

    nodes, grades, settings_rows, draws, annual_weights = [], [], [], [], []
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
                        "denominator": node.denominator,
                        "bound_lo": node.value_bounds[0],
                        "bound_hi": node.value_bounds[1],
                        "change_basis": node.change_basis,
                        "annual_only": node.annual_only,
                        "round_digits": version.round,
                        "round_mode": version.round_mode,
                        "min_children": None,
                        "scale_lo": version.scale[0],
                        "scale_hi": version.scale[1],
                    }
                    | _treatment_columns(
                        node.outliers or version.treatment.outliers, node.missing or version.treatment.missing
                    )
                    | _anomaly_columns(version.anomalies, node.anomalies)
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
                        "denominator": None,
                        "bound_lo": None,
                        "bound_hi": None,
                        "change_basis": None,
                        "annual_only": None,
                        "round_digits": node.round if node.round is not None else version.round,
                        "round_mode": version.round_mode,
                        "min_children": node.min_children or version.min_children,
                        "scale_lo": version.scale[0],
                        "scale_hi": version.scale[1],
                    }
                    | _treatment_columns(None, None)
                    | {"anomaly_enabled": None, "anomaly_sensitivity": None}
                )
        grades.extend(grade_rows(common, version.grades, version.annual))
        annual_weights.extend(annual_weight_rows(common, version.annual))
        settings_rows.append(
            common
            | {"reason": version.reason}
            | version_columns(version.adjustment_caps, version.quota_ties, version.annual)
            | {
                "bottom_n": version.bottom_rule.bottom_n,
                "bottom_periods": version.bottom_rule.periods,
                "change_history": version.change_warning.history,
                "change_min_history": version.change_warning.min_history,
                "change_amber": version.change_warning.amber,
                "change_red": version.change_warning.red,
                "anomaly_history": version.anomaly_window()[0],
                "anomaly_min_history": version.anomaly_window()[1],
                "anomaly_min_peers": version.anomalies.min_peers,
                "anomaly_seasonal_min_months": version.anomalies.seasonal_min_months,
                "anomaly_scale_floor": version.anomalies.scale_floor,
                "anomaly_peer": version.anomalies.peer,
                "scale_lo": version.scale[0],
                "scale_hi": version.scale[1],
                "round_digits": version.round,
                "round_mode": version.round_mode,
                "min_children": version.min_children,
                "rank_decimals": version.rank_decimals,
                "rank_ties": version.ties,
                "stored_decimals": version.stored_decimals,
            }
        )
        draws.extend(_robustness_draws(version))

    calendar = pa.Table.from_pylist(
        [{"calendar_date": d, "is_working_day": w} for d, w in holidays.days()],
        schema=pa.schema([("calendar_date", pa.date32()), ("is_working_day", pa.bool_())]),
    )
    return {
        "departments": departments,
        "catalogue_nodes": pa.Table.from_pylist(nodes, schema=_NODE_SCHEMA),
        "catalogue_grades": pa.Table.from_pylist(grades, schema=_GRADE_SCHEMA),
        "catalogue_versions": pa.Table.from_pylist(settings_rows, schema=_VERSION_SCHEMA),
        "catalogue_annual_weights": pa.Table.from_pylist(annual_weights, schema=_ANNUAL_WEIGHT_SCHEMA),
        "calendar_exceptions": calendar,
        "robustness_draws": pa.Table.from_pylist(draws, schema=_DRAW_SCHEMA),
    }


def _treatment_columns(outliers: Outliers | None, missing: MissingData | None) -> dict:
    return {
        "outlier_method": outliers.method if outliers else None,
        "winsor_lower": outliers.lower if outliers else None,
        "winsor_upper": outliers.upper if outliers else None,
        "max_skewness": outliers.skewness if outliers else None,
        "max_kurtosis": outliers.kurtosis if outliers else None,
        "max_treated_points": outliers.max_points if outliers else None,
        "missing_method": missing.method if missing else None,
        "max_lookback": missing.max_lookback if missing else None,
    }


def _anomaly_columns(version: Anomalies, node: IndicatorAnomalies | None) -> dict:
    """An indicator's anomaly settings: its own override, else the version's."""
    node = node or IndicatorAnomalies()
    return {
        "anomaly_enabled": version.enabled if node.enabled is None else node.enabled,
        "anomaly_sensitivity": version.sensitivity if node.sensitivity is None else node.sensitivity,
    }


def _robustness_draws(version: CatalogueVersion) -> list[dict]:
    """The Monte Carlo design: per draw, a weight factor for every node below the
    root and one normalisation and aggregation choice. Only the random design is
    made here; the scores of every draw are computed by the same dbt models as the
    published ones. Seeded, so the same catalogue gives the same draws."""
    import numpy as np

    config = version.robustness
    rng = np.random.default_rng(config.seed)
    node_ids = [n.indicator if isinstance(n, IndicatorNode) else n.id for n, parent, _ in walk(version.tree) if parent]
    p = config.weight_perturbation
    factors = (
        rng.uniform(1 - p, 1 + p, size=(config.draws, len(node_ids))) if p else np.ones((config.draws, len(node_ids)))
    )
    norm_choice = rng.integers(len(config.normalisations), size=config.draws)
    agg_choice = rng.integers(len(config.aggregations), size=config.draws)
    rows = []
    for draw in range(config.draws):
        choices = {
            "catalogue_version": version.version,
            "draw": draw + 1,
            "normalisation": config.normalisations[norm_choice[draw]],
            "aggregation": config.aggregations[agg_choice[draw]],
        }
        rows.extend(choices | {"node_id": node, "weight_factor": float(f)} for node, f in zip(node_ids, factors[draw]))
    return rows


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
        ("denominator", pa.string()),
        ("bound_lo", pa.float64()),
        ("bound_hi", pa.float64()),
        ("change_basis", pa.string()),
        ("annual_only", pa.bool_()),
        ("round_digits", pa.int32()),
        ("round_mode", pa.string()),
        ("min_children", pa.int32()),
        ("scale_lo", pa.float64()),
        ("scale_hi", pa.float64()),
        ("outlier_method", pa.string()),
        ("winsor_lower", pa.float64()),
        ("winsor_upper", pa.float64()),
        ("max_skewness", pa.float64()),
        ("max_kurtosis", pa.float64()),
        ("max_treated_points", pa.int32()),
        ("missing_method", pa.string()),
        ("max_lookback", pa.int32()),
        ("anomaly_enabled", pa.bool_()),
        ("anomaly_sensitivity", pa.float64()),
    ]
)
_DRAW_SCHEMA = pa.schema(
    [
        ("catalogue_version", pa.string()),
        ("draw", pa.int32()),
        ("normalisation", pa.string()),
        ("aggregation", pa.string()),
        ("node_id", pa.string()),
        ("weight_factor", pa.float64()),
    ]
)
_ANNUAL_WEIGHT_SCHEMA = pa.schema(
    _VERSIONED + [("period_type", pa.string()), ("position", pa.int32()), ("weight", pa.float64())]
)
_GRADE_SCHEMA = pa.schema(
    _VERSIONED
    + [
        ("applies_to", pa.string()),
        ("grade_order", pa.int32()),
        ("grade", pa.string()),
        ("min_score", pa.float64()),
        ("max_share", pa.float64()),
    ]
)
_VERSION_SCHEMA = pa.schema(
    _VERSIONED
    + [
        ("reason", pa.string()),
        ("bonus_cap", pa.float64()),
        ("penalty_cap", pa.float64()),
        ("quota_ties", pa.string()),
        ("annual_bonus_cap", pa.float64()),
        ("annual_penalty_cap", pa.float64()),
        ("annual_quota_ties", pa.string()),
        ("annual_method", pa.string()),
        ("annual_periods", pa.string()),
        ("merged_departments", pa.string()),
        ("bottom_n", pa.int32()),
        ("bottom_periods", pa.int32()),
        ("change_history", pa.int32()),
        ("change_min_history", pa.int32()),
        ("change_amber", pa.float64()),
        ("change_red", pa.float64()),
        ("anomaly_history", pa.int32()),
        ("anomaly_min_history", pa.int32()),
        ("anomaly_min_peers", pa.int32()),
        ("anomaly_seasonal_min_months", pa.int32()),
        ("anomaly_scale_floor", pa.float64()),
        ("anomaly_peer", pa.bool_()),
        ("scale_lo", pa.float64()),
        ("scale_hi", pa.float64()),
        ("round_digits", pa.int32()),
        ("round_mode", pa.string()),
        ("min_children", pa.int32()),
        ("rank_decimals", pa.int32()),
        ("rank_ties", pa.string()),
        ("stored_decimals", pa.int32()),
    ]
)
