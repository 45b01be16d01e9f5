"""Expectation suites (quality/*.yaml) and running them with Great Expectations.

Each suite is a YAML list of GX expectations with a severity. They run on every
landed file in full, as SQL inside an in-memory DuckDB reading the file's
Parquet, so a ten-million-row file is never pulled into pandas and the
warehouse file is never opened. GX takes seconds to import: it is imported only
inside `run_suite`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.checks.gate import CheckOutcome
from pipelines.reference import load_yaml_model


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str = Field(pattern=r"^expect_[a-z_]+$")
    kwargs: dict[str, Any] = {}
    severity: Literal["error", "warning"]

    @property
    def check_name(self) -> str:
        target = (
            self.kwargs.get("column")
            or "_".join(str(self.kwargs.get(k)) for k in ("column_A", "column_B") if k in self.kwargs)
            or "_".join(self.kwargs.get("column_list", []))
            or "table"
        )
        return f"{self.type.removeprefix('expect_')}:{target}"


class Completeness(BaseModel):
    """Every department in office delivers rows for each period by the mapping's deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: Literal["error", "warning"] = "warning"  # one department's missing file is a warning


class Volume(BaseModel):
    """Each department's rows against the median of its own last `lookback` periods."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lookback: int = Field(default=6, ge=3, le=36)
    min_ratio: float = Field(default=0.5, ge=0)
    max_ratio: float = Field(default=2.0, ge=1)
    min_rows: int = Field(default=20, ge=1)
    severity: Literal["error", "warning"] = "warning"


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    # `true` for the defaults, `false` (or absent) for none, or the settings.
    completeness: Completeness | None = None
    volume: Volume | None = None
    expectations: list[Expectation] = Field(min_length=1)

    @field_validator("completeness", "volume", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value


def load_suites(quality_dir: Path) -> dict[str, Suite]:
    suites = {}
    for path in sorted(quality_dir.glob("*.yaml")):
        suite: Suite = load_yaml_model(path, Suite)  # type: ignore[assignment]
        suites[suite.source] = suite
    return suites


def _gx_class_name(expectation_type: str) -> str:
    return "".join(part.capitalize() for part in expectation_type.split("_"))


def _enable_duckdb_in_gx() -> None:
    """GX 1.24 reads a query's rows after closing its SQLAlchemy connection; with
    duckdb-engine that close discards the result, and every metric comes back
    empty (IndexError in resolve_metric_bundle). GX keeps one open connection for
    the dialects it lists as persisted (as for sqlite); listing duckdb there makes
    it work. This touches a private GX name, so great-expectations is pinned and
    tests/test_quality_suites.py fails loudly if the name moves."""
    import great_expectations.execution_engine.sqlalchemy_execution_engine as engine

    class _DuckDBDialect(str):
        value = "duckdb"

    if not any(getattr(d, "value", d) == "duckdb" for d in engine._PERSISTED_CONNECTION_DIALECTS):
        engine._PERSISTED_CONNECTION_DIALECTS = (*engine._PERSISTED_CONNECTION_DIALECTS, _DuckDBDialect("duckdb"))


@dataclass(frozen=True)
class LandedFile:
    period: dt.date
    file_hash: str
    parquet: Path
    register: Path | None = None  # the period's submission register: which slices are superseded
    slice_column: str | None = None  # see CanonicalTable.slice_column


def run_suite(suite: Suite, files: list[LandedFile]) -> list[CheckOutcome]:
    """Validate landed files against the suite; one outcome per file and expectation.

    All files are validated together first, in one pass over the data (GX's
    start-up per batch costs more than the SQL). That pass stands for each file
    only where it says nothing about the batch: every expectation passed with no
    unexpected row and no batch-wide observed value. Otherwise the files are
    validated one by one, so a file's outcome never depends on which other files
    landed in the same run (an incremental run and a full one store the same).
    """
    if not files:
        return []
    validate = _validator(suite)
    together = validate(files)
    if all(clean for _expectation, _passed, _details, clean in together):
        return [
            _outcome(suite, f, expectation, True, details) for f in files for expectation, _, details, _ in together
        ]
    return [
        _outcome(suite, f, expectation, passed, details)
        for f in files
        for expectation, passed, details, _clean in validate([f])
    ]


def _outcome(suite: Suite, landed: LandedFile, expectation: Expectation, passed: bool, details: str) -> CheckOutcome:
    return CheckOutcome(
        source=suite.source,
        period=landed.period,
        file_hash=landed.file_hash,
        check_name=f"gx:{expectation.check_name}",
        severity=expectation.severity,
        passed=passed,
        details=details,
    )


def _validator(suite: Suite):
    """A function validating a list of files as one batch with the suite."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _enable_duckdb_in_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_sql("lake", connection_string="duckdb:///:memory:")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.source))
    by_id: dict[str, Expectation] = {}
    for expectation in suite.expectations:
        added = gx_suite.add_expectation(getattr(gxe, _gx_class_name(expectation.type))(**expectation.kwargs))
        by_id[str(added.id)] = expectation
    batches = iter(range(1_000_000))

    def validate(files: list[LandedFile]) -> list[tuple[Expectation, bool, str, bool]]:
        """(expectation, passed, details, clean): clean when it passed with no
        unexpected row and no observed value, true of every file in the batch."""

        def quoted(paths: list[Path]) -> str:
            return ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in paths)

        query = f"select * from read_parquet([{quoted([f.parquet for f in files])}], union_by_name = true) as landed"
        registers = sorted({f.register for f in files if f.register and f.register.exists()})
        if registers:
            # A resubmission's superseded slices are history, not data to validate.
            query += (
                f" where not exists (select 1 from read_parquet([{quoted(registers)}]) as register"
                " where register.file_hash = landed._file_hash and register.department_id = landed.department_id"
                " and register.status <> 'current'"
                " and coalesce(register.month, landed._month, landed._period) = coalesce(landed._month, landed._period)"
                + (
                    f" and register.slice = coalesce(cast(landed.{files[0].slice_column} as varchar), '')"
                    if files[0].slice_column
                    else ""
                )
                + ")"
            )
        asset = datasource.add_query_asset(name=f"batch_{next(batches)}", query=query)
        result = asset.add_batch_definition_whole_table("all").get_batch().validate(gx_suite)
        found = {str(r.expectation_config.id): r for r in result.results}
        outcomes = []
        for key, expectation in by_id.items():
            observed = found[key].result or {}
            passed = bool(found[key].success)
            clean = passed and observed.get("unexpected_count") == 0 and "observed_value" not in observed
            outcomes.append((expectation, passed, _describe(observed, found[key].exception_info), clean))
        return outcomes

    return validate


def _describe(observed: dict, exception_info: Any) -> str:
    if isinstance(exception_info, dict) and exception_info.get("raised_exception"):
        return "检查执行出错 (check raised): " + re.sub(r"\s+", " ", str(exception_info.get("exception_message")))[:300]
    parts = []
    if "unexpected_count" in observed:
        parts.append(f"不符合 {observed['unexpected_count']} 行")
        sample = observed.get("partial_unexpected_list") or []
        if sample:
            parts.append(f"例: {sample[:5]}")
    if "observed_value" in observed:
        parts.append(f"实际值 {observed['observed_value']}")
    return "; ".join(parts) or "ok"
