"""A home built by an earlier version of govperf is carried on by the next `govperf run`.

A new version may add a column to a mart (fct_indicator_values.n_unknown). Its dbt
project differs, so every month's stamp differs and every month is built again; the
incremental marts then gain the model's new columns (on_schema_change:
append_new_columns; dbt allows no other choice but `fail` for a mart under a
contract) instead of refusing the build. The home here is made to look like an
earlier version's: a mart without a column it has now, a lake whose rows have no
_month (the month of a resubmission slice) yet, and the dbt stamps of a project that
has since changed. Whole pipelines: slow stage.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.canonical import CANONICAL
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT
from pipelines.stamps import StampStore
from pipelines.transform import stamps
from tests.conftest import record_as_built
from tests.test_incremental_runs import _run
from tests.test_rerun_and_duplicates import all_marts

pytestmark = pytest.mark.slow


def _columns(warehouse, table: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [row[0] for row in con.sql(f"describe marts.{table}").fetchall()]


def test_a_home_whose_marts_have_other_columns_is_rebuilt_to_the_models_columns(tmp_path) -> None:
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=3,
        first_month="2025-07",
        last_month="2025-08",
        transactions=1200,
    )
    _run(home, inbox)
    warehouse = home / "warehouse" / "govperf.duckdb"
    built = all_marts(warehouse)
    expected_columns = _columns(warehouse, "fct_indicator_values")
    assert "n_unknown" in expected_columns

    # as an earlier version left it: a mart without a column, and a lake whose rows
    # (and the empty schema files of sources without files) have no _month yet
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table marts.fct_indicator_values drop column n_unknown")
    lake = home / "lake"
    for source in CANONICAL:
        for path in [*(lake / source).rglob("*.parquet"), *(lake / "history" / source).rglob("*.parquet")]:
            duckdb.execute(
                f"copy (select * exclude (_month) from read_parquet('{path}')) to '{path}.old' (format parquet)"
            )
            Path(f"{path}.old").replace(path)
    record_as_built(warehouse, home)
    store = StampStore(home)
    store.forget(stamps.STEP, list(store.read(stamps.STEP)))

    said = _run(home, inbox)
    assert "dbt: redo 2025-07..2025-08" in said, said[-3000:]
    assert _columns(warehouse, "fct_indicator_values") == expected_columns
    assert all_marts(warehouse) == built
