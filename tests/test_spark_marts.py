"""Spark's marts as views in the DuckDB file (pipelines/transform/spark_marts.py): typed
by the dbt contract, partition columns recovered from folder names, and hashed by
`govperf verify` exactly as the DuckDB build's own tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.ledger.mart_digest import mart_digests
from pipelines.transform.parse import ensure_manifest, parse_dir
from pipelines.transform.spark_marts import (
    contracted_columns,
    data_files_glob,
    marts_files_sha256,
    marts_in_manifest,
    register_marts,
    table_folders,
    view_sql,
    wait_while_derby_is_booted,
)
from pipelines.warehouse import duckdb_connection

PARTITIONED = ["period"]
COLUMNS = [
    ("period", "date"),
    ("department_id", "varchar"),
    ("score", "double"),
    ("rank", "integer"),
    ("n_obs", "bigint"),
    ("flagged", "boolean"),
    ("computed_at", "timestamp"),
]
ROWS = [
    (dt.date(2025, 7, 1), "D001", 85.0, 1, 120, True, dt.datetime(2025, 8, 1, 9, 30)),
    (dt.date(2025, 7, 1), "D002", 84.125, 2, 97, False, dt.datetime(2025, 8, 1, 9, 30)),
    (dt.date(2025, 8, 1), "D001", 80.5, 2, 130, None, dt.datetime(2025, 9, 1, 9, 30)),
    (dt.date(2025, 8, 1), "D002", 90.0, 1, None, False, dt.datetime(2025, 9, 1, 9, 30)),
]


def _duckdb_build(path: Path) -> None:
    """The DuckDB engine's own mart: a table of the contract's types."""
    con = duckdb_connection(path)
    con.execute("create schema marts")
    con.execute("create table marts.fct_example (" + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")")
    con.executemany("insert into marts.fct_example values (?, ?, ?, ?, ?, ?, ?)", ROWS)
    con.close()


def _spark_layout(warehouse: Path) -> None:
    """What dbt-spark writes for an incremental mart partitioned by period: Spark's types
    (string, int for a count, the period only in the folder names), columns in another order."""
    folder = warehouse / "marts.db" / "fct_example"
    for period in sorted({row[0] for row in ROWS}):
        rows = [row for row in ROWS if row[0] == period]
        table = pa.table(
            {
                "score": pa.array([r[2] for r in rows], pa.float64()),
                "department_id": pa.array([r[1] for r in rows], pa.string()),
                "rank": pa.array([r[3] for r in rows], pa.int32()),
                "n_obs": pa.array([r[4] for r in rows], pa.int32()),
                "flagged": pa.array([r[5] for r in rows], pa.bool_()),
                "computed_at": pa.array([r[6] for r in rows], pa.timestamp("us")),
            }
        )
        part = folder / f"period={period.isoformat()}"
        part.mkdir(parents=True)
        pq.write_table(table, part / "part-00000-c000.snappy.parquet")
    # what Spark leaves beside the data, and a file someone put there: never read
    (folder / "_SUCCESS").write_bytes(b"")
    unfinished = folder / "_temporary" / "0" / "task_0" / "period=2025-09-01"
    unfinished.mkdir(parents=True)
    pq.write_table(table, unfinished / "part-00000-c000.snappy.parquet")
    (folder / "a=0").mkdir()
    pq.write_table(table, folder / "a=0" / "planted.parquet")
    (warehouse / "marts.db" / "fct_empty").mkdir(parents=True)


def test_a_spark_mart_reads_and_hashes_as_the_duckdb_builds_table(tmp_path):
    _duckdb_build(tmp_path / "duckdb.duckdb")
    _spark_layout(tmp_path / "spark-warehouse")
    folders = table_folders(tmp_path / "spark-warehouse")
    assert set(folders) == {"fct_example", "fct_empty"}

    con = duckdb_connection(tmp_path / "spark.duckdb")
    # an earlier DuckDB build's table of the same name is replaced by the view
    con.execute("create schema marts; create table marts.fct_example (stale integer)")
    registered = register_marts(
        con,
        folders,
        {
            "fct_example": (COLUMNS, PARTITIONED),
            "fct_empty": ([("period", "date"), ("note", "varchar")], PARTITIONED),
            "fct_not_written": ([("note", "varchar")], []),
        },
    )
    assert registered == ["fct_empty", "fct_example", "fct_not_written"]
    types = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'fct_example' order by ordinal_position"
    ).fetchall()
    assert types == [(n, t.upper()) for n, t in COLUMNS]
    assert con.execute("select count(*) from marts.fct_empty").fetchone() == (0,)
    assert con.execute("select count(*) from marts.fct_not_written").fetchone() == (0,)
    assert sorted(con.execute("select * from marts.fct_example").fetchall(), key=str) == sorted(ROWS, key=str)

    spark_digests = mart_digests(con, ["fct_example"])
    con.close()
    duck = duckdb_connection(tmp_path / "duckdb.duckdb", read_only=True)
    assert spark_digests == mart_digests(duck, ["fct_example"])
    assert set(spark_digests["fct_example"]) == {"-:2025-07-01", "-:2025-08-01"}


def test_only_the_declared_partition_folders_are_read(tmp_path):
    _spark_layout(tmp_path / "w")
    folder = table_folders(tmp_path / "w")["fct_example"]
    assert data_files_glob(folder, PARTITIONED) == "period=*/*.parquet"
    # undeclared, the files sit one folder down: none at the top, so none are read
    assert data_files_glob(folder) is None


def test_a_failed_registration_changes_no_view(tmp_path):
    _spark_layout(tmp_path / "w")
    folders = table_folders(tmp_path / "w")
    con = duckdb_connection(tmp_path / "spark.duckdb")
    register_marts(con, folders, {"fct_example": (COLUMNS, PARTITIONED)})
    before = con.execute("select sql from duckdb_views() where view_name = 'fct_example'").fetchone()
    with pytest.raises(duckdb.Error):
        register_marts(
            con, folders, {"fct_example": (COLUMNS[:2], PARTITIONED), "fct_z": ([("x", "no_such_type")], [])}
        )
    assert con.execute("select sql from duckdb_views() where view_name = 'fct_example'").fetchone() == before


def test_an_untyped_column_is_read_as_parquet_has_it_and_an_empty_untyped_mart_is_refused(tmp_path):
    _spark_layout(tmp_path / "w")
    folders = table_folders(tmp_path / "w")
    assert view_sql("fct_example", folders["fct_example"], [("score", None)], partition_by=PARTITIONED).startswith(
        'create or replace view "marts"."fct_example" as select "score" from read_parquet('
    )
    with pytest.raises(ValueError, match="does not declare every column's type"):
        view_sql("fct_empty", folders["fct_empty"], [("note", None)])
    with pytest.raises(ValueError, match="no columns declared"):
        view_sql("fct_empty", folders["fct_empty"], [])


def test_every_mart_of_the_project_declares_its_columns_types():
    """The views are typed from the contract: every mart must declare each column's type."""
    ensure_manifest()
    marts = contracted_columns(parse_dir() / "manifest.json")
    # on DuckDB no mart is partitioned (Spark's come from period_partition_by())
    assert all(not partitions for _, partitions in marts_in_manifest(parse_dir() / "manifest.json").values())
    assert "fct_rankings" in marts and "fct_indicator_evidence" in marts
    untyped = {mart: [name for name, data_type in columns if not data_type] for mart, columns in marts.items()}
    assert {mart: names for mart, names in untyped.items() if names} == {}
    assert all(columns for columns in marts.values()), [m for m, c in marts.items() if not c]


def test_the_marts_files_hash_sees_a_data_file_edited_and_not_sparks_own_files(tmp_path):
    _spark_layout(tmp_path / "w")
    manifest = tmp_path / "manifest.json"
    node = {
        "resource_type": "model",
        "schema": "marts",
        "alias": "fct_example",
        "name": "fct_example",
        "config": {"partition_by": PARTITIONED},
        "columns": {name: {"name": name, "data_type": data_type} for name, data_type in COLUMNS},
    }
    manifest.write_text(json.dumps({"nodes": {"model.govperf.fct_example": node}}), encoding="utf-8")
    folder = tmp_path / "w" / "marts.db" / "fct_example"
    first = marts_files_sha256(tmp_path / "w", manifest)
    (folder / "_SUCCESS").write_bytes(b"again")
    assert marts_files_sha256(tmp_path / "w", manifest) == first
    data = folder / "period=2025-07-01" / "part-00000-c000.snappy.parquet"
    pq.write_table(pq.read_table(data).slice(0, 1), data)  # a row removed by hand
    assert marts_files_sha256(tmp_path / "w", manifest) != first
    # a table the manifest no longer names (a mart removed from the project): all its files, folders skipped
    edited = marts_files_sha256(tmp_path / "w", manifest)
    left = tmp_path / "w" / "marts.db" / "fct_removed" / "period=2025-07-01"
    left.mkdir(parents=True)
    shutil.copyfile(data, left / "part-00000.parquet")
    assert marts_files_sha256(tmp_path / "w", manifest) != edited


def test_the_engine_is_read_as_profiles_yml_names_it_and_an_unknown_one_is_one_sentence(tmp_path, monkeypatch):
    from pipelines.settings import UnknownEngine, engine

    monkeypatch.setenv("GOVPERF_ENGINE", " DuckDB ")
    assert engine() == "duckdb"
    monkeypatch.setenv("GOVPERF_ENGINE", "")
    assert engine() == "duckdb"
    monkeypatch.setenv("GOVPERF_ENGINE", "sparkle")
    with pytest.raises(UnknownEngine):
        engine()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    env |= {"GOVPERF_HOME": str(tmp_path / "home"), "GOVPERF_ENGINE": "sparkle"}
    govperf = str(Path(sys.executable).with_name("govperf"))
    done = subprocess.run([govperf, "verify"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "GOVPERF_ENGINE='sparkle' is no engine govperf knows: use one of duckdb, spark" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_home_whose_path_has_glob_characters_still_reads_its_marts(tmp_path):
    warehouse = tmp_path / "gov[2]*?" / "w"
    _spark_layout(warehouse)
    con = duckdb_connection(tmp_path / "spark.duckdb")
    register_marts(con, table_folders(warehouse), {"fct_example": (COLUMNS, PARTITIONED)})
    assert con.execute("select count(*) from marts.fct_example").fetchone() == (len(ROWS),)


def test_a_build_waits_while_another_process_has_the_derby_metastore_booted(tmp_path):
    """Derby's own lock, as a booted Spark session holds it: an fcntl lock on dbex.lck
    (a real process here holds it the same way for 3 s, then ends)."""
    metastore = tmp_path / "metastore_db"
    metastore.mkdir()
    (metastore / "dbex.lck").write_bytes(b"")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'r+b'); fcntl.lockf(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(3)",
            str(metastore / "dbex.lck"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    said, started = [], time.monotonic()
    wait_while_derby_is_booted(metastore, timeout_s=60, on_wait=said.append)
    assert time.monotonic() - started > 1.5 and len(said) == 1 and "metastore" in said[0]
    holder.wait(timeout=30)
    with pytest.raises(TimeoutError):
        again = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'r+b'); "
             "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(10)", str(metastore / "dbex.lck")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert again.stdout.readline().strip() == "held"
        try:
            wait_while_derby_is_booted(metastore, timeout_s=1)
        finally:
            again.kill()
            again.wait()
    wait_while_derby_is_booted(tmp_path / "no_metastore_yet")  # a first build: nothing to wait for


def test_a_home_built_on_duckdb_then_on_spark_is_read_as_duckdb_left_it(tmp_path, monkeypatch):
    """The first Spark build of a home the last build of which ran on DuckDB: the check
    that refuses marts changed outside dbt reads the DuckDB build's tables, not views of
    Spark's folders (an older Spark build's here), which would show every row gone."""
    import dagster as dg

    from pipelines.ledger import events
    from pipelines.ledger.mart_digest import warehouse_digests
    from pipelines.settings import settings
    from pipelines.transform.assets import refuse_a_warehouse_changed_outside_dbt

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GOVPERF_DUCKDB", raising=False)
    monkeypatch.setenv("GOVPERF_ENGINE", "spark")
    s = settings()
    s.duckdb_path.parent.mkdir(parents=True)
    _duckdb_build(s.duckdb_path)
    _spark_layout(s.spark_home / "warehouse")
    marts = warehouse_digests(s.duckdb_path, fingerprint=False)[0]
    events.record_build(s.home, "run-1", [dt.date(2025, 7, 1)], True, [], marts, events.file_sha256(s.duckdb_path))

    refuse_a_warehouse_changed_outside_dbt(s)  # the very bytes the DuckDB build left
    con = duckdb_connection(s.duckdb_path)
    con.execute("create table main.unrelated (x integer)")  # other bytes, the same marts
    con.close()
    refuse_a_warehouse_changed_outside_dbt(s)
    con = duckdb.connect(str(s.duckdb_path), read_only=True)
    kinds = con.execute("select table_type from information_schema.tables where table_schema = 'marts'").fetchall()
    con.close()
    assert {kind for (kind,) in kinds} == {"BASE TABLE"}

    con = duckdb_connection(s.duckdb_path)
    con.execute("update marts.fct_example set score = score + 1 where department_id = 'D001'")  # a hand edit
    con.close()
    with pytest.raises(dg.Failure, match="changed outside dbt"):
        refuse_a_warehouse_changed_outside_dbt(s)
