"""Which period a file and its rows belong to (docs/ingest.md, "Periods"): a month,
a quarter or a year in the file's name, or a fixed `period:`; each row counts in the
months of its own dates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.readers import ExtractError
from pipelines.ingest.submissions import deadline_of
from tests.test_ingest_landing import GOOD, HEADER, MAPPINGS, _land_with

YEARLY = {"period_pattern": r"_(?P<year>\d{4})\.csv$"}


def _mapping(changes: dict) -> SourceMapping:
    base = MAPPINGS["service_transactions"]
    return type(base).model_validate(base.model_dump() | changes)


def test_a_year_in_the_file_name_makes_a_yearly_file_filed_under_january(tmp_path: Path) -> None:
    yearly = _mapping(YEARLY)
    assert yearly.period_of("好差评明细_2025.csv") == dt.date(2025, 1, 1)
    assert yearly.months_per_period == 12
    assert [m for m in range(1, 13) if yearly.is_period_start(dt.date(2025, m, 1))] == [1]
    # due the mapping's day of the month after the year
    assert deadline_of(yearly, dt.date(2025, 1, 1)) == dt.date(2026, 1, 5)

    rows = [GOOD, GOOD.replace("SX1,", "SX2,").replace("2025-03-0", "2025-11-0")]
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    landing, quarantine = _land_with(tmp_path, text.encode("gbk"), YEARLY, name="好差评明细_2025.csv")
    assert (landing.period, landing.rows_accepted, quarantine) == (dt.date(2025, 1, 1), 2, [])
    assert (tmp_path / "lake" / "service_transactions" / "2025-01" / f"{landing.file_hash}.parquet").is_file()


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        (r"(?P<year>\d{4})-(?P<quarter>\d)", {"好差评明细_2025-2.csv": dt.date(2025, 4, 1)}),
        (r"(?P<year>\d{4})(?P<month>\d{2})", {"好差评明细_202503.csv": dt.date(2025, 3, 1)}),
    ],
)
def test_a_quarter_or_a_month_in_the_name_is_still_its_period(pattern: str, names: dict) -> None:
    mapping = _mapping({"period_pattern": pattern})
    assert {name: mapping.period_of(name) for name in names} == names


@pytest.mark.parametrize(
    "pattern", [r"(?P<month>\d{2})", r"(?P<year>\d{4})(?P<month>\d{2})(?P<quarter>\d)"], ids=["no year", "both"]
)
def test_a_period_pattern_without_a_year_or_with_month_and_quarter_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="period_pattern needs a named group year"):
        _mapping({"period_pattern": pattern})


def _file_load(lake: Path, source: str, period: dt.date, sha: str, first_row_month: dt.date | None) -> None:
    import pyarrow as pa

    from pipelines.ingest.land import FILE_LOAD_SCHEMA, lake_paths
    from pipelines.parquet import write_table

    row = {"source": source, "period": period, "file_hash": sha, "first_row_month": first_row_month}
    write_table(
        pa.Table.from_pylist([row], schema=FILE_LOAD_SCHEMA), lake_paths(lake, source, period, sha)["file_load"]
    )


def test_a_file_with_rows_of_earlier_months_is_named_in_the_earliest_months_stamp(tmp_path: Path) -> None:
    from pipelines.transform.stamps import later_files

    months = ["2025-02-01", "2025-03-01", "2025-04-01"]
    _file_load(tmp_path, "service_transactions", dt.date(2025, 4, 1), "a" * 64, dt.date(2025, 3, 1))
    _file_load(tmp_path, "service_transactions", dt.date(2025, 4, 1), "b" * 64, dt.date(2025, 4, 1))  # its own month
    _file_load(tmp_path, "hotline_complaints", dt.date(2025, 3, 1), "c" * 64, dt.date(2024, 11, 1))  # before the first
    _file_load(tmp_path, "leader_reviews", dt.date(2025, 4, 1), "d" * 64, None)  # rows without dates
    assert later_files(tmp_path, months) == {
        "2025-02-01": [f"hotline_complaints/2025-03/{'c' * 64}"],
        "2025-03-01": [f"service_transactions/2025-04/{'a' * 64}"],
    }
    broken = tmp_path / "file_loads" / "survey_responses" / "2025-04" / "x.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not parquet")
    with pytest.raises(ExtractError, match=r"file log .*x\.parquet cannot be read"):
        later_files(tmp_path, months)


def test_an_optional_month_group_that_did_not_match_names_no_period() -> None:
    mapping = _mapping({"period_pattern": r"_(?P<year>\d{4})(?P<month>\d{2})?\.csv$"})
    assert mapping.period_of("好差评明细_202503.csv") == dt.date(2025, 3, 1)
    assert mapping.period_of("好差评明细_2025.csv") is None
