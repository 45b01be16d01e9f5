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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.checks.gate import CheckOutcome
from pipelines.reference import load_yaml_model


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str = Field(pattern=r"^expect_[a-z_]+$")
    kwargs: dict[str, Any] = {}
    severity: Literal["error", "warning"]

    @property
    def check_name(self) -> str:
        target = self.kwargs.get("column") or "_".join(
            str(self.kwargs.get(k)) for k in ("column_A", "column_B") if k in self.kwargs
        ) or "_".join(self.kwargs.get("column_list", [])) or "table"
        return f"{self.type.removeprefix('expect_')}:{target}"


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    completeness: bool = True
    expectations: list[Expectation] = Field(min_length=1)


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


def run_suite(suite: Suite, parquet_files: dict[str, Path], period: dt.date) -> list[CheckOutcome]:
    """Validate each landed file (file hash -> accepted Parquet) against the suite."""
    if not parquet_files:
        return []
    import great_expectations as gx
    import great_expectations.expectations as gxe

    _enable_duckdb_in_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_sql("lake", connection_string="duckdb:///:memory:")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.source))
    by_id: dict[str, Expectation] = {}
    for expectation in suite.expectations:
        added = gx_suite.add_expectation(getattr(gxe, _gx_class_name(expectation.type))(**expectation.kwargs))
        by_id[str(added.id)] = expectation

    outcomes: list[CheckOutcome] = []
    for file_hash, parquet in sorted(parquet_files.items()):
        quoted = parquet.as_posix().replace("'", "''")
        query = f"select * from read_parquet('{quoted}')"
        asset = datasource.add_query_asset(name=f"file_{file_hash[:16]}", query=query)
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        result = batch.validate(gx_suite)
        for outcome in result.results:
            expectation = by_id[str(outcome.expectation_config.id)]
            observed = outcome.result or {}
            details = _describe(observed, outcome.exception_info)
            outcomes.append(
                CheckOutcome(
                    source=suite.source,
                    period=period,
                    file_hash=file_hash,
                    check_name=f"gx:{expectation.check_name}",
                    severity=expectation.severity,
                    passed=bool(outcome.success),
                    details=details,
                )
            )
    return outcomes


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
