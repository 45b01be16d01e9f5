"""Property-based tests of the scoring models: the real dbt project, on generated data.

What is checked, on every generated case:
  1. range       every score in fct_indicator_values, fct_department_scores and
                 fct_rankings (composite_score) lies in [0, 100] (and the latter two
                 are never NULL); every raw and scored value is a finite number;
  2. monotony    raising one department's raw value on a higher-is-better
                 indicator never lowers that department's score on the indicator
                 (nor, since only its own cell changed, its composite);
  3. permutation shuffling the input rows, and spreading them over several files,
                 changes nothing per department: values, scores, node scores and
                 ranks, composite, ranks, grade, Monte Carlo band, and the outlier
                 treatment of each indicator.

How: a dbt run costs about 20 s, far too much for one per hypothesis example. So
one hypothesis example is a *batch* of CASES base cases, each of which becomes
three months of one lake, all scored by a single `dbt build`:
    A   the case, its rows in one file in (department, indicator) order;
    A'  A with one department's value raised on one higher-is-better indicator;
    B   A's rows shuffled and spread over up to three files.
The rows are written as ingest lands them (Parquet with the accepted-file schema
of indicator_observations); the reference tables come from YAML through
pipelines.reference. Nothing the checks read crosses months (no indicator imputes
its last observed value), so the months are independent cases; the columns that
look back a month by design (rank_change, bottom_streak, bottom_flag) are not
compared.

Hypothesis runs MAX_EXAMPLES batches (3, about a minute; GOVPERF_PROPERTY_EXAMPLES
sets more for a longer search). It always tries the simplest example first, so the
strategy is arranged to make that one an edge case worth a dbt run (all
departments, every value tied, B reversed over three files); the others are
random, with ties, extremes, the smallest double, missing rows, rows without a
value and samples below min_obs. There is no shrinking (each step would be another
dbt run) and no example database (a failing batch is not replayed by itself): a
failure lists the failing cases' input rows, and hypothesis prints a
@reproduce_failure blob.

The catalogue is synthetic (written to a tmp dir): indicators read only from
indicator_observations, with every normalisation, both directions, arithmetic and
geometric nodes, winsorisation, peer-group-mean imputation, a minimum sample and
20 Monte Carlo draws. skew_kurtosis treatment is used only on a lower-is-better
indicator, which the monotony property does not cover: COINr's rule sets the most
extreme value to the next value in, so raising an uncapped top value can get it
capped below where it was (six 0s, a 10 and a 20 score 71.84 on z-score; raise the
20 to 1000 and it is capped to 10 and scores 66.20) -- a property of the method,
not of its SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines.ingest.assets import REFERENCE_TABLES, ensure_lake_schemas
from pipelines.ingest.canonical import CANONICAL
from pipelines.ingest.land import empty_source_file, lake_paths
from pipelines.parquet import write_table
from pipelines.reference import reference_tables
from pipelines.settings import DBT_PROJECT_DIR
from pipelines.settings import settings as govperf_settings
from pipelines.transform.project import dbt_environment, dbt_executable

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("GOVPERF_PROPERTY_EXAMPLES", "3"))  # one dbt run each
CASES = 8  # base cases per dbt run; three months each
FIRST_PERIOD = dt.date(2021, 1, 1)
# One unit in the 4th decimal: scores are stored rounded to 4 decimals, from
# intermediate values rounded too, so equal scores can land either side of a rounding.
# Other values (raw, scored, caps) must agree to 9 significant digits.
SCORE_TOLERANCE = 1e-4
SHOWN = 6  # violations shown per property

SOURCE = CANONICAL["indicator_observations"]
DEPARTMENTS = {f"P{i:02d}": ("alpha" if i <= 4 else "beta") for i in range(1, 9)}

# indicator id -> direction; the tree is in CATALOGUE_YAML.
INDICATORS = {
    "h_minmax": "higher",
    "h_zscore": "higher",
    "h_target": "higher",
    "h_goalposts": "higher",
    "h_percentile": "higher",
    "l_minmax": "lower",
    "l_target": "lower",
}
HIGHER = [i for i, d in INDICATORS.items() if d == "higher"]
MIN_OBS = {"h_goalposts": 5}

CATALOGUE_YAML = """\
versions:
  - version: "prop.1"
    effective_from: 2020-01-01
    reason: property tests of the scoring models
    grades:
      - {grade: A, min_score: 85, max_share: 0.25}
      - {grade: B, min_score: 60}
      - {grade: C, min_score: 0}
    adjustment_caps: {bonus: 5, penalty: 10}
    robustness:
      draws: 20
      normalisations: [catalogue, min_max, z_score, percentile_rank]
      aggregations: [catalogue, arithmetic, geometric]
    tree:
      id: composite
      name: composite
      aggregation: arithmetic
      children:
        - id: geo
          name: geometric node
          weight: 60
          aggregation: geometric
          children:
            - {indicator: h_minmax, name: min-max, weight: 2, unit: x, direction: higher,
               normalisation: min_max}
            - {indicator: h_zscore, name: z-score winsorised, weight: 1, unit: x, direction: higher,
               normalisation: z_score, outliers: {method: winsorise, lower: 0.1, upper: 0.9}}
            - {indicator: h_target, name: distance to target, weight: 1, unit: x, direction: higher,
               normalisation: distance_to_target, target: 90, missing: {method: group_mean}}
        - id: ari
          name: arithmetic node
          weight: 40
          aggregation: arithmetic
          children:
            - {indicator: h_goalposts, name: goalposts, weight: 1, unit: x, direction: higher,
               normalisation: goalposts, goalposts: [60, 100], min_obs: 5}
            - {indicator: h_percentile, name: percentile rank, weight: 1, unit: x, direction: higher,
               normalisation: percentile_rank}
            - id: lower_is_better
              name: lower is better
              weight: 2
              children:
                - {indicator: l_minmax, name: min-max lower, weight: 1, unit: x, direction: lower,
                   normalisation: min_max, outliers: {method: skew_kurtosis}}
                - {indicator: l_target, name: distance to target lower, weight: 1, unit: x,
                   direction: lower, normalisation: distance_to_target, target: 5,
                   missing: {method: group_mean}}
"""


# ------------------------------------------------------------------ generated cases

Row = tuple[str, str, "float | None", "int | None"]  # department_id, indicator_id, value, n_obs


@dataclass
class Case:
    rows: list[Row]  # A, in (department, indicator) order
    raised: tuple[str, str, float]  # A': (department, indicator, new value)
    shuffled: list[list[Row]] = field(default_factory=list)  # B: its files, rows in file order

    def raised_rows(self) -> list[Row]:
        dept, indicator, new_value = self.raised
        return [(d, i, new_value if (d, i) == (dept, indicator) else v, n) for d, i, v, n in self.rows]

    def describe(self) -> str:
        dept, indicator, new_value = self.raised
        old = next(v for d, i, v, _ in self.rows if (d, i) == (dept, indicator))
        lines = [f"  {d} ({DEPARTMENTS[d]}) {i}: value={v!r} n_obs={n!r}" for d, i, v, n in self.rows]
        return "\n".join(
            [
                "case A rows (department, peer group, indicator, value, n_obs):",
                *lines,
                f"A' raises {dept} {indicator} from {old!r} to {new_value!r}",
                f"B files: {[[(d, i) for d, i, _, _ in f] for f in self.shuffled]}",
            ]
        )


# Zero of both signs, tiny and huge magnitudes, the smallest double, and the
# catalogue's goalposts and target.
EXTREMES = [0.0, -0.0, 1e-9, -1e-9, 1e9, -1e9, 5e-324, 60.0, 90.0, 100.0]
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """One base case. Hypothesis always tries the simplest example first, so the
    choices are arranged to make that one useful too: every department present,
    every cell valued, all values tied, B in reverse order over three files."""
    # A few values shared by the case, so that ties across departments are common.
    pool = draw(st.lists(st.one_of(st.integers(-10, 150).map(float), finite), min_size=1, max_size=3))
    value = st.one_of(st.sampled_from(pool), st.integers(-10, 150).map(float), finite, st.sampled_from(EXTREMES))
    absent = draw(st.sets(st.sampled_from(sorted(DEPARTMENTS)), max_size=len(DEPARTMENTS) - 1))
    rows: list[Row] = []
    for dept in sorted(set(DEPARTMENTS) - absent):
        for indicator in INDICATORS:
            kind = draw(st.integers(0, 9))  # 0-7: a value, 8: a row without a value, 9: no row
            if kind == 9:
                continue
            n_obs = draw(st.one_of(st.none(), st.integers(0, 12)))
            rows.append((dept, indicator, None if kind == 8 else draw(value), n_obs))
    if not rows:  # a department with no row at all is not a unit of the month
        rows.append((min(set(DEPARTMENTS) - absent), "h_minmax", draw(value), None))

    def scorable(indicator: str, n_obs: int | None) -> bool:  # n_obs NULL counts the value itself
        return (1 if n_obs is None else n_obs) >= MIN_OBS.get(indicator, 1)

    candidates = [(d, i, v) for d, i, v, n in rows if i in HIGHER and v is not None and scorable(i, n)]
    if not candidates:  # make one cell worth raising
        dept, indicator = draw(st.sampled_from(sorted({r[0] for r in rows}))), draw(st.sampled_from(HIGHER))
        cell = (dept, indicator, draw(value), draw(st.integers(MIN_OBS.get(indicator, 1), 12)))
        rows = sorted(
            [r for r in rows if r[:2] != cell[:2]] + [cell], key=lambda r: (r[0], list(INDICATORS).index(r[1]))
        )
        candidates = [cell[:3]]
    dept, indicator, old = draw(st.sampled_from(candidates))
    others = sorted({v for d, i, v, _ in rows if i == indicator and v is not None and v > old})
    target = draw(
        st.one_of(
            st.sampled_from(others) if others else st.nothing(),  # a tie with another department
            st.floats(min_value=1e-9, max_value=1e9).map(lambda delta: old + delta),
            st.sampled_from([1e9, old + 1.0, old + 1e-6]),
        )
    )
    new_value = target if target > old else old + 1.0

    order = draw(st.permutations(rows))[::-1]
    n_files = 4 - draw(st.integers(1, 3))
    shift = draw(st.lists(st.integers(0, n_files - 1), min_size=len(order), max_size=len(order)))
    files = [
        [r for position, (r, s) in enumerate(zip(order, shift)) if (position + s) % n_files == k]
        for k in range(n_files)
    ]
    return Case(rows=rows, raised=(dept, indicator, new_value), shuffled=[f for f in files if f])


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


# ------------------------------------------------------------------ the lake and dbt


@pytest.fixture(scope="module")
def scoring_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GOVPERF_CONFIG with the synthetic departments, holidays and catalogue."""
    config = tmp_path_factory.mktemp("scoring_config")
    reference = config / "reference"
    reference.mkdir()
    departments = [
        {"id": d, "name": f"Department {d}", "peer_group": group, "valid_from": "2019-01-01"}
        for d, group in DEPARTMENTS.items()
    ]
    (reference / "departments.yaml").write_text(yaml.safe_dump({"departments": departments}), encoding="utf-8")
    (reference / "holidays.yaml").write_text("years: {}\n", encoding="utf-8")
    (reference / "catalogue.yaml").write_text(CATALOGUE_YAML, encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target and log folder, shared by the runs of this module (partial parsing)."""
    return tmp_path_factory.mktemp("dbt_target")


def write_observations(lake: Path, period: dt.date, files: list[list[Row]], label: str) -> None:
    """Accepted indicator_observations rows as ingest lands them: one Parquet file per
    extract, with the columns (and types) of the source's zero-row schema file."""
    schema = pq.read_schema(empty_source_file(lake, SOURCE))
    for part, rows in enumerate(files, start=1):
        file_name = f"indicator_observations_{period:%Y-%m}_{label}{part}.csv"
        file_hash = hashlib.sha256(json.dumps([file_name, rows]).encode()).hexdigest()
        table = pa.Table.from_pylist(
            [
                {
                    "department_id": d,
                    "indicator_id": i,
                    "value": v,
                    "n_obs": n,
                    "_file_name": file_name,
                    "_file_hash": file_hash,
                    "_period": period,
                    "_line": line,
                }
                for line, (d, i, v, n) in enumerate(rows, start=2)  # line 1 is the header
            ],
            schema=schema,
        )
        write_table(table, lake_paths(lake, SOURCE.name, period, file_hash)["accepted"])


def build_marts(home: Path, config: Path, target: Path, batch: list[Case]) -> tuple[Path, dict]:
    """Land the batch, write the reference tables, run `dbt build` once; return the
    warehouse path and which (case, variant) each period holds."""
    periods: dict[dt.date, tuple[int, str]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVPERF_HOME", str(home))
        patch.setenv("GOVPERF_CONFIG", str(config))
        for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE"):
            patch.delenv(derived, raising=False)
        s = govperf_settings()
        environment = dbt_environment()

    s.lake.mkdir(parents=True)
    ensure_lake_schemas(s.lake)
    tables = reference_tables(s.reference_dir)
    for name in REFERENCE_TABLES:
        write_table(tables[name], s.lake / "reference" / f"{name}.parquet")
    for n, case in enumerate(batch):
        a, a_raised, b = (add_months(FIRST_PERIOD, 3 * n + k) for k in range(3))
        write_observations(s.lake, a, [case.rows], "a")
        write_observations(s.lake, a_raised, [case.raised_rows()], "r")
        write_observations(s.lake, b, case.shuffled, "b")
        periods |= {a: (n, "A"), a_raised: (n, "A'"), b: (n, "B")}

    s.duckdb_path.parent.mkdir(parents=True)
    run_results = target / "run_results.json"
    run_results.unlink(missing_ok=True)  # the target folder is shared by the examples
    result = subprocess.run(
        [
            dbt_executable(),
            "build",
            "--profiles-dir",
            ".",
            "--exclude",
            "test_type:unit",
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # failed data tests are reported below, after the properties
    )
    assert run_results.exists(), f"dbt did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    results = json.loads(run_results.read_text())["results"]
    failed = [
        f"{r['unique_id']}: {r['status']} {r.get('message') or ''}"
        for r in results
        if r["status"] not in ("success", "pass")
    ]
    # A model that failed leaves nothing to check. A failed data test (and the models
    # it skips, e.g. fct_warnings) is reported after the properties, which say more.
    errors = [f for f in failed if ": error" in f]
    assert not errors, "dbt models failed:\n" + "\n".join(errors) + "\n" + result.stdout[-3000:]
    return s.duckdb_path, {"periods": periods, "dbt_failures": failed}


def read_marts(duckdb_path: Path) -> dict[str, list[dict]]:
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:

        def rows(sql: str) -> list[dict]:
            cursor = con.execute(sql)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r)) for r in cursor.fetchall()]

        return {
            "indicators": rows("select * from marts.fct_indicator_values"),
            "nodes": rows("select * from marts.fct_department_scores"),
            "rankings": rows("select * from marts.fct_rankings"),
            "treatment": rows("select * from marts.fct_indicator_treatment"),
        }
    finally:
        con.close()


# ------------------------------------------------------------------ the properties

# Per department (and indicator or node), what must not depend on row order.
INDICATOR_COLUMNS = [
    "raw_value",
    "n_obs",
    "score",
    "is_imputed",
    "meets_min_obs",
    "scored_value",
    "is_treated",
    "imputation",
    "missing_reason",
]
NODE_COLUMNS = ["level", "score", "rank"]
RANKING_COLUMNS = [
    "composite_score",
    "base_score",
    "rank",
    "peer_group_rank",
    "grade",
    "peer_group",
    "n_ranked",
    "rank_p05",
    "rank_p95",
    "rank_median",
    "clearly_ahead_of",
    "bonus_points",
]
TREATMENT_COLUMNS = [
    "lower_cap",
    "upper_cap",
    "times_capped_low",
    "times_capped_high",
    "skewness_before",
    "kurtosis_before",
    "skewness_after",
    "kurtosis_after",
    "still_outside_thresholds",
]
SCORES = {"score", "composite_score", "base_score"}


def keyed(rows: list[dict], key: tuple[str, ...]) -> dict[dt.date, dict[tuple, dict]]:
    out: dict[dt.date, dict[tuple, dict]] = {}
    for r in rows:
        out.setdefault(r["period"], {})[tuple(r[k] for k in key)] = r
    return out


def same(column: str, x: object, y: object) -> bool:
    """Equal, up to the rounding of stored scores (absolute) or of values (relative)."""
    if not isinstance(x, float) or not isinstance(y, float):
        return x == y
    if math.isnan(x) or math.isnan(y):  # reported by the range property
        return math.isnan(x) and math.isnan(y)
    if column in SCORES:
        return abs(x - y) <= SCORE_TOLERANCE
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def range_violations(marts: dict, periods: dict, batch: list[Case]) -> list[str]:
    found: dict[int, list[str]] = {}  # case -> violations

    def report(r: dict, what: str) -> None:
        where = " ".join(str(r[k]) for k in ("department_id", "indicator_id", "dimension") if k in r)
        n, variant = periods[r["period"]]
        found.setdefault(n, []).append(f"{what} at {where}, period {r['period']} ({variant})")

    for table, column, nullable in (
        ("indicators", "score", True),
        ("nodes", "score", False),
        ("rankings", "composite_score", False),
    ):
        for r in marts[table]:
            value = r[column]
            if (value is None and not nullable) or (value is not None and not 0 <= value <= 100):
                report(r, f"{table}.{column}={value!r}")
    # Finite values in, finite values out: every value scored is a number.
    for r in marts["indicators"]:
        for column in ("raw_value", "scored_value"):
            if r[column] is not None and not math.isfinite(r[column]):
                report(r, f"indicators.{column}={r[column]!r}")
    return [
        f"case {n}: "
        + "; ".join(v[:SHOWN])
        + (f" (and {len(v) - SHOWN} more)" if len(v) > SHOWN else "")
        + f"\n{batch[n].describe()}"
        for n, v in sorted(found.items())
    ]


def monotony_violations(marts: dict, periods: dict, batch: list[Case]) -> list[str]:
    indicators = keyed(marts["indicators"], ("department_id", "indicator_id"))
    rankings = keyed(marts["rankings"], ("department_id",))
    problems = []
    by_case = {(n, variant): p for p, (n, variant) in periods.items()}
    for n, case in enumerate(batch):
        a, raised = by_case[(n, "A")], by_case[(n, "A'")]
        dept, indicator, _ = case.raised
        before = indicators[a][(dept, indicator)]["score"]
        after = indicators[raised][(dept, indicator)]["score"]
        if before is not None and (after is None or after < before - SCORE_TOLERANCE):
            problems.append(f"{dept} {indicator}: score {before} in A, {after} in A'\n{case.describe()}")
        # Only the department's own cell changed, and every node is increasing in
        # each child: its composite cannot fall either.
        composite_before = rankings[a].get((dept,), {}).get("composite_score")
        composite_after = rankings[raised].get((dept,), {}).get("composite_score")
        if composite_before is not None and (
            composite_after is None or composite_after < composite_before - SCORE_TOLERANCE
        ):
            cells = {i: (indicators[a][(dept, i)]["score"], indicators[raised][(dept, i)]["score"]) for i in INDICATORS}
            problems.append(
                f"{dept} composite: {composite_before} in A, {composite_after} in A' "
                f"(its indicator scores A -> A': {cells})\n{case.describe()}"
            )
    return problems


def permutation_violations(marts: dict, periods: dict, batch: list[Case]) -> list[str]:
    by_case = {(n, variant): p for p, (n, variant) in periods.items()}
    problems = []
    for table, key, columns in (
        ("indicators", ("department_id", "indicator_id"), INDICATOR_COLUMNS),
        ("nodes", ("department_id", "dimension"), NODE_COLUMNS),
        ("rankings", ("department_id",), RANKING_COLUMNS),
        ("treatment", ("indicator_id",), TREATMENT_COLUMNS),
    ):
        rows = keyed(marts[table], key)
        for n, case in enumerate(batch):
            a = rows.get(by_case[(n, "A")], {})
            b = rows.get(by_case[(n, "B")], {})
            if a.keys() != b.keys():
                problems.append(f"{table}: rows {sorted(a)} in A, {sorted(b)} in B\n{case.describe()}")
                continue
            for k in sorted(a):
                differing = [f"{c}: {a[k][c]!r} vs {b[k][c]!r}" for c in columns if not same(c, a[k][c], b[k][c])]
                if differing:
                    problems.append(f"{table} {k}: {'; '.join(differing)} (A vs B)\n{case.describe()}")
    return problems


def coverage_problems(marts: dict, periods: dict, batch: list[Case]) -> list[str]:
    """The marts hold what was landed: every unit of every month has its cells, so
    that the properties are not checked on an empty or half-read warehouse."""
    cells = keyed(marts["indicators"], ("department_id", "indicator_id"))
    problems = []
    for period, (n, variant) in periods.items():
        expected = {(d, i) for d in {r[0] for r in batch[n].rows} for i in INDICATORS}
        if set(cells.get(period, {})) != expected:
            problems.append(
                f"period {period} ({variant} of case {n}): cells {sorted(cells.get(period, {}))}, "
                f"expected {sorted(expected)}"
            )
    return problems


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(batch=st.lists(cases(), min_size=CASES, max_size=CASES))
def test_scoring_properties(batch: list[Case], scoring_config: Path, dbt_target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="govperf-properties-") as home:
        duckdb_path, run = build_marts(Path(home), scoring_config, dbt_target, batch)
        marts = read_marts(duckdb_path)
    periods = run["periods"]

    problems = coverage_problems(marts, periods, batch)
    assert not problems, "the marts do not hold the cases landed:\n" + "\n".join(problems)
    # All three properties are checked before failing, so one run shows every one broken.
    failures = {
        "1. scores outside [0, 100] (or values not finite)": range_violations(marts, periods, batch),
        "2. raising a value lowered a score": monotony_violations(marts, periods, batch),
        "3. row order changed the results": permutation_violations(marts, periods, batch),
    }
    report = [
        f"{name}:\n" + "\n".join(found[:SHOWN]) + (f"\n... and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
        for name, found in failures.items()
        if found
    ]
    assert not report, "\n\n".join(report)
    assert not run["dbt_failures"], "dbt data tests failed:\n" + "\n".join(run["dbt_failures"])
