"""Spark's marts, made readable as the public contract: views in the DuckDB file.

On the Spark engine (GOVPERF_ENGINE=spark) dbt-spark writes each mart as a Parquet
table in Spark's warehouse folder, `<warehouse>/<schema>.db/<table>/`, partitioned
by period where the model is incremental (`period=2025-07-01/part-….parquet`: the
partition column lives in the folder names, not in the files). Everything that
reads the marts (bulletins, exports, verify, explain) reads the DuckDB file at
GOVPERF_DUCKDB through one reader, so after a Spark build each mart becomes a view
there, `marts.<table>`, over its Parquet files.

Each view casts every column to the type the mart's dbt contract declares, in the
contract's column order: Spark's types (string, int, partition columns read back
from folder names) then read as the DuckDB build's do, and the marts' canonical
digests (pipelines/ledger/mart_digest.py) do not depend on the engine that wrote
them. A view names its folder by absolute path; a home moved elsewhere registers
its views again on its next build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

MARTS_SCHEMA = "marts"

Columns = Sequence[tuple[str, str | None]]  # (name, contracted type or None)


def contracted_columns(manifest_path: Path, schema: str = MARTS_SCHEMA) -> dict[str, list[tuple[str, str | None]]]:
    """{mart: [(column, data_type)]} for every model dbt writes to `schema`, from the
    parsed project's manifest.json, in the order the model's YAML lists them."""
    return {table: columns for table, (columns, _) in marts_in_manifest(manifest_path, schema).items()}


def marts_in_manifest(manifest_path: Path, schema: str = MARTS_SCHEMA) -> dict[str, tuple[list, list[str]]]:
    """{mart: ([(column, data_type)], [partition column])} of the models dbt writes to
    `schema`: the contract, and the folders Spark partitions the mart's files by
    (`partition_by`, empty for an unpartitioned table or on DuckDB)."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    marts = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["schema"] != schema:
            continue
        partition_by = node["config"].get("partition_by") or []
        marts[node["alias"] or node["name"]] = (
            [(column["name"], column.get("data_type")) for column in node["columns"].values()],
            [partition_by] if isinstance(partition_by, str) else list(partition_by),
        )
    return marts


def table_folders(warehouse_dir: Path, schema: str = MARTS_SCHEMA) -> dict[str, Path]:
    """{table: folder} of the tables Spark has written for `schema` (empty if none)."""
    database = warehouse_dir / f"{schema}.db"
    if not database.is_dir():
        return {}
    return {folder.name: folder for folder in sorted(database.iterdir()) if folder.is_dir()}


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))  # Spark's own: _SUCCESS, _temporary (a job's unfinished files), .crc


def data_files_glob(folder: Path, partition_by: Sequence[str] = ()) -> str | None:
    """The glob of a Spark table's data files within its folder, or None if it has none:
    `*.parquet` under the partition folders the model declares (`period_type=*/period=*/`),
    so that nothing else in the folder is read: Spark's own _SUCCESS and a job's
    unfinished files under _temporary/, or a file someone put there."""
    pattern = "/".join([*(f"{column}=*" for column in partition_by), "*.parquet"])
    found = [path for path in folder.glob(pattern) if not _hidden(path.name)]
    return pattern if found else None


def _glob_escaped(path: str) -> str:
    """A folder's path as a literal part of a DuckDB glob: a home may be named `gov[2]`."""
    return "".join(f"[{c}]" if c in "[*?" else c for c in path)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(
    table: str, folder: Path | None, columns: Columns, schema: str = MARTS_SCHEMA, partition_by: Sequence[str] = ()
) -> str:
    """The statement that makes `schema.table` a view over the Parquet files in `folder`
    (an empty view of its columns when Spark has written none, or no folder)."""
    if not columns:
        raise ValueError(f"{schema}.{table}: no columns declared in its dbt model, so its view cannot be typed")
    view = f"create or replace view {_identifier(schema)}.{_identifier(table)} as select "
    pattern = data_files_glob(folder, partition_by) if folder is not None and folder.is_dir() else None
    if pattern is None:
        # Spark writes no file for an empty partitioned table, and a table it has not
        # written (yet, or dropped by a build that then failed) has no folder at all
        if any(data_type is None for _, data_type in columns):
            raise ValueError(f"{schema}.{table}: empty, and its dbt model does not declare every column's type")
        typed_nulls = ", ".join(f"cast(null as {data_type}) as {_identifier(name)}" for name, data_type in columns)
        return view + typed_nulls + " where false"
    files = _literal(_glob_escaped(folder.resolve().as_posix()) + "/" + pattern)
    selected = ", ".join(
        f"cast({_identifier(name)} as {data_type}) as {_identifier(name)}" if data_type else _identifier(name)
        for name, data_type in columns
    )
    return view + f"{selected} from read_parquet({files}, hive_partitioning = true, union_by_name = true)"


def register_marts(
    con: duckdb.DuckDBPyConnection,
    folders: Mapping[str, Path],
    marts: Mapping[str, tuple[Columns, Sequence[str]]],
    schema: str = MARTS_SCHEMA,
) -> list[str]:
    """Make each mart of `marts` ({mart: (columns, partition columns)}) a view over its
    folder, in one transaction: a reader sees the views before or after, never half. A
    mart Spark has not written is an empty view of its columns, as it is on Spark; the
    DuckDB build's own tables in `schema` are replaced by the views. Returns the marts."""
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {_identifier(schema)}")
        for table in sorted(marts):
            columns, partition_by = marts[table]
            existing = con.execute(
                "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()
            if existing and existing[0] != "VIEW":
                con.execute(f"drop table {_identifier(schema)}.{_identifier(table)}")
            con.execute(view_sql(table, folders.get(table), columns, schema, partition_by))
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed commit has already ended the transaction
            con.execute("rollback")
        raise
    return sorted(marts)


def publish_spark_marts(duckdb_path: Path, warehouse_dir: Path, manifest_path: Path) -> list[str]:
    """Every mart of the project a view in the DuckDB file of what Spark holds now: after
    a build, and before one, so that the check for marts changed outside dbt reads
    exactly what the build will then read."""
    from pipelines.warehouse import duckdb_connection

    marts = marts_in_manifest(manifest_path)
    con = duckdb_connection(duckdb_path)
    try:
        return register_marts(con, table_folders(warehouse_dir), marts)
    finally:
        con.close()


def marts_files_sha256(warehouse_dir: Path, manifest_path: Path, schema: str = MARTS_SCHEMA) -> str:
    """One SHA-256 over the marts' data files (each one's path in the warehouse and
    bytes): with the DuckDB file's, what a Spark build left, so that the next build can
    tell a hand-edited Parquet file as it tells a hand-edited DuckDB file."""
    digest = hashlib.sha256()
    marts = marts_in_manifest(manifest_path, schema)
    for table, folder in table_folders(warehouse_dir, schema).items():
        pattern = data_files_glob(folder, marts[table][1]) if table in marts else "**/*"
        for path in sorted(p for p in folder.glob(pattern) if p.is_file()) if pattern else []:
            digest.update(f"{table}/{path.relative_to(folder).as_posix()}\0".encode())
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def wait_while_derby_is_booted(metastore: Path, timeout_s: float = 900, on_wait=None) -> None:
    """Return once no JVM has the Derby metastore at `metastore` booted. Called under the
    home's metastore lock, so a JVM holding it is none of ours that took turns: it is a
    dbt left running by a run killed with SIGKILL (dbt, and Spark inside it, outlive their
    parent and finish the build). A booted Derby holds an fcntl lock on dbex.lck (seen
    with pyspark 4.3: lockf fails with EAGAIN while a session is up, succeeds after)."""
    lock = metastore / "dbex.lck"
    deadline = time.monotonic() + timeout_s
    told = False
    while lock.is_file():
        with lock.open("r+b") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(handle, fcntl.LOCK_UN)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Spark's metastore {metastore} is still in use by another process") from None
        if on_wait is not None and not told:
            on_wait(f"waiting for Spark's metastore {metastore}: another process (a dbt left by a killed run) has it")
            told = True
        time.sleep(0.5)
