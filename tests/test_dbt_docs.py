"""`govperf docs` writes dbt's documentation site into the home: one HTML file
that opens offline and lists every marts model with its columns. It reads the
warehouse under the shared lock, opened read-only: it waits for a build, and
readers keep reading while it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.runner import failure_messages, launch
from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT, settings
from pipelines.transform.docs import remote_references
from pipelines.warehouse import read_warehouse, warehouse_lock
from tests.conftest import use_home

GOVPERF = str(Path(sys.executable).with_name("govperf"))


@pytest.fixture
def built_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny city's home after one full run of July 2025."""
    inbox = tmp_path / "inbox"
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month="2025-07",
        last_month="2025-07",
        transactions=2000,
    )
    use_home(monkeypatch, tmp_path / "home", inbox)
    result = launch("2025-07")
    assert result.success, failure_messages(result)
    return tmp_path / "home"


@pytest.mark.slow
def test_docs_site_opens_offline_and_lists_the_marts_and_their_columns(built_home: Path):
    # A build holds the warehouse: the docs wait for it, and write nothing meanwhile.
    with warehouse_lock(exclusive=True):
        docs = subprocess.Popen(
            [GOVPERF, "docs"], env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(5)
        assert docs.poll() is None and not (built_home / "docs").exists()
    # A reader keeps its read-only connection open: the docs open the file read-only beside it.
    with read_warehouse() as reader:
        marts = {
            table: [
                c
                for (c,) in reader.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
            ]
            for (table,) in reader.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        out, err = docs.communicate(timeout=600)
    assert docs.returncode == 0, err
    index = built_home / "docs" / "index.html"
    assert out.strip() == f"dbt docs: {index}"
    assert index == settings().home / "docs" / "index.html"

    html = index.read_text(encoding="utf-8")
    assert not remote_references(html)  # no script or stylesheet from the network
    # dbt's page loads a tracker from a CDN only when the manifest allows usage stats.
    assert '"send_anonymous_usage_stats": false' in html

    assert {"fct_rankings", "fct_indicator_values", "dim_department"} <= set(marts)
    catalog = json.loads((built_home / "docs" / "catalog.json").read_text(encoding="utf-8"))
    for table, columns in marts.items():
        unique_id = f"model.govperf.{table}"
        assert unique_id in html, table
        assert list(catalog["nodes"][unique_id]["columns"]) == columns, table
        assert all(f'"{column}"' in html for column in columns), table


def test_docs_before_any_run_say_so_in_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_home(monkeypatch, tmp_path / "home", tmp_path / "inbox")
    done = subprocess.run([GOVPERF, "docs"], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Error: no warehouse at {tmp_path / 'home' / 'warehouse' / 'govperf.duckdb'} yet: run `govperf run` first"
    )
