"""The Great Expectations suites run as SQL inside DuckDB over landed Parquet,
and say which file failed which expectation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.checks.suites import LandedFile, load_suites, run_suite
from pipelines.settings import QUALITY_DIR

MONTH = dt.date(2025, 3, 1)


def _parquet(path: Path, rows: str) -> Path:
    duckdb.execute(
        f"""copy (select * from (values {rows}) as t(case_id, rating, channel, time_limit_days, received_at, completed_at))
            to '{path}' (format parquet)"""
    )
    return path


def test_suites_load_and_name_real_gx_expectations():
    import great_expectations.expectations as gxe

    suites = load_suites(QUALITY_DIR)
    assert "service_transactions" in suites
    for suite in suites.values():
        for expectation in suite.expectations:
            class_name = "".join(part.capitalize() for part in expectation.type.split("_"))
            assert hasattr(gxe, class_name), expectation.type


def test_suite_passes_clean_files_and_pins_the_failing_one(tmp_path):
    good = (
        "('A1', 5, 'online', 3, timestamp '2025-03-01 09:00', timestamp '2025-03-02 09:00'), "
        "('A2', 4, 'offline', 3, timestamp '2025-03-01 09:00', null)"
    )
    bad = (
        "('B1', 9, 'online', 3, timestamp '2025-03-05 09:00', timestamp '2025-03-01 09:00'), "
        "('B1', 4, 'fax', 3, timestamp '2025-03-01 09:00', timestamp '2025-03-02 09:00')"
    )
    suite = load_suites(QUALITY_DIR)["service_transactions"]
    clean = [LandedFile(MONTH, "good", _parquet(tmp_path / "good.parquet", good))]
    outcomes = run_suite(suite, clean)
    assert outcomes and all(o.passed for o in outcomes)

    mixed = clean + [LandedFile(MONTH, "bad", _parquet(tmp_path / "bad.parquet", bad))]
    outcomes = run_suite(suite, mixed)
    failed = {(o.file_hash, o.check_name) for o in outcomes if not o.passed}
    assert ("bad", "gx:column_values_to_be_between:rating") in failed
    assert ("bad", "gx:column_values_to_be_in_set:channel") in failed
    assert ("bad", "gx:column_values_to_be_unique:case_id") in failed
    assert ("bad", "gx:column_pair_values_a_to_be_greater_than_b:completed_at_received_at") in failed
    assert not any(file_hash == "good" for file_hash, _ in failed)
    rating = next(o for o in outcomes if o.file_hash == "bad" and o.check_name.endswith("between:rating"))
    assert "9" in rating.details and rating.severity == "error"


def test_a_files_outcomes_do_not_depend_on_the_files_checked_beside_it(tmp_path):
    # An incremental run checks only its new files; a full run checks them all at
    # once. The stored outcome of a file must be the same either way (the soak test
    # found fct_data_quality differing by a "checked with N other files" note).
    first = "('A1', 5, 'online', 3, timestamp '2025-03-01 09:00', timestamp '2025-03-02 09:00')"
    second = "('C1', 4, 'offline', 3, timestamp '2025-03-03 09:00', timestamp '2025-03-04 09:00')"
    suite = load_suites(QUALITY_DIR)["service_transactions"]
    a = LandedFile(MONTH, "a", _parquet(tmp_path / "a.parquet", first))
    b = LandedFile(MONTH, "b", _parquet(tmp_path / "b.parquet", second))
    alone = sorted((o for o in run_suite(suite, [a])), key=repr)
    together = sorted((o for o in run_suite(suite, [a, b]) if o.file_hash == "a"), key=repr)
    assert alone and together == alone
