"""Compare relations built by dbt on Spark with the same relations in a DuckDB warehouse.

    python -m pipelines.transform.compare_engines <duckdb file> <schema.table> [...]

Spark's side is read through a local session with the profile's warehouse folder and
Derby metastore ($GOVPERF_HOME/spark, pipelines/settings.py spark_home), written to
Parquet in a scratch folder, and compared in DuckDB with EXCEPT ALL both ways: the rows
only in DuckDB, and the rows only in Spark, per relation. Columns are matched by name;
a column in one engine only is reported. `--digits N` rounds doubles to N significant
digits on both sides first (exact comparison by default). Run it when no dbt is
running on Spark in the same home (the embedded Derby metastore serves one JVM), or
with `--files`, which reads the tables' Parquet files under the warehouse folder
directly, partition folders as columns (tables only, not views).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

from pipelines.settings import settings


def spark_session():
    from pyspark.sql import SparkSession

    home = settings().spark_home
    return (
        SparkSession.builder.master("local[2]")
        .appName("govperf-compare")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.mergeSchema", "true")
        .config("spark.sql.analyzer.maxIterations", "1000")
        .config("spark.sql.optimizer.maxIterations", "1000")
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={home}/metastore_db;create=true"
        )
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .enableHiveSupport()
        .getOrCreate()
    )


def _rounded(column: str, type_name: str, digits: int | None) -> str:
    quoted = f'"{column}"'
    if digits is None or type_name.upper() not in ("DOUBLE", "FLOAT", "REAL"):
        return quoted
    return (
        f"case when {quoted} is null or {quoted} = 0 or isnan({quoted}) or isinf({quoted}) then {quoted} "
        f"else round({quoted}, cast({digits - 1} - floor(log10(abs({quoted}))) as integer)) end as {quoted}"
    )


def compare(duckdb_path: Path, relations: list[str], digits: int | None, show: int, files: bool = False) -> int:
    spark = None
    if not files:
        spark = spark_session()
        spark.sparkContext.setLogLevel("ERROR")
    warehouse = settings().spark_home / "warehouse"
    scratch = Path(tempfile.mkdtemp(prefix="govperf-compare-"))
    con = duckdb.connect()
    con.execute(f"attach '{duckdb_path}' as duck (read_only)")
    differing = 0
    try:
        for name in relations:
            if spark is None:  # the table's own Parquet files, its partition folders as columns
                schema, table = name.split(".")
                files_glob = warehouse / f"{schema}.db" / table / "**" / "*.parquet"
                if any((warehouse / f"{schema}.db" / table).rglob("*.parquet")):
                    con.execute(
                        f"create or replace view sp as select * from read_parquet('{files_glob}', hive_partitioning = true)"
                    )
                else:  # Spark writes no file for an empty table
                    con.execute(f"create or replace view sp as select * from duck.{name} where false")
            else:
                out = scratch / name.replace(".", "__")
                spark.table(name).write.parquet(str(out))
                con.execute(f"create or replace view sp as select * from read_parquet('{out}/*.parquet')")
            duck_cols = {r[0]: r[1] for r in con.execute(f"describe duck.{name}").fetchall()}
            spark_cols = {r[0]: r[1] for r in con.execute("describe sp").fetchall()}
            common = [c for c in duck_cols if c in spark_cols]
            only = sorted(set(duck_cols) ^ set(spark_cols))
            cols = ", ".join(_rounded(c, duck_cols[c], digits) for c in common)
            n_duck = con.execute(f"select count(*) from duck.{name}").fetchone()[0]
            n_spark = con.execute("select count(*) from sp").fetchone()[0]
            only_duck = f"select {cols} from duck.{name} except all select {cols} from sp"
            only_spark = f"select {cols} from sp except all select {cols} from duck.{name}"
            a = con.execute(f"select count(*) from ({only_duck})").fetchone()[0]
            b = con.execute(f"select count(*) from ({only_spark})").fetchone()[0]
            same = a == 0 and b == 0 and not only
            differing += not same
            print(
                f"{name}: {'EQUAL' if same else 'DIFFER'} rows duckdb={n_duck} spark={n_spark}; "
                f"only in duckdb {a}, only in spark {b}" + (f"; columns in one engine only: {only}" if only else "")
            )
            if not same and show:
                for side, sql in (("duckdb", only_duck), ("spark", only_spark)):
                    for row in con.execute(f"{sql} order by all limit {show}").fetchall():
                        print(f"  only in {side}: {row}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{len(relations)} relations, {differing} differ")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("duckdb", type=Path)
    parser.add_argument("relations", nargs="+", help="schema.table, as named on both engines")
    parser.add_argument("--digits", type=int, default=None, help="round doubles to this many significant digits")
    parser.add_argument("--show", type=int, default=3, help="rows to print per side when a relation differs")
    parser.add_argument(
        "--files",
        action="store_true",
        help="read Spark's tables from their Parquet files in the warehouse folder (no Spark, no metastore lock)",
    )
    args = parser.parse_args(argv)
    return compare(args.duckdb, args.relations, args.digits, args.show, args.files)


if __name__ == "__main__":
    sys.exit(main())


def compare_warehouses(first: Path, second: Path, digits: int | None = None, show: int = 5) -> dict[str, dict]:
    """Every mart of two warehouses (DuckDB files, one perhaps holding Spark's marts as
    views), row by row, columns matched by name: {mart: {"rows": (n, n), "only_first": k,
    "only_second": k, "columns_in_one_only": [...], "examples": [...]}} for the marts
    that differ. Doubles are compared exactly, or at `digits` significant digits."""
    con = duckdb.connect()
    con.execute(f"attach '{first}' as a (read_only)")
    con.execute(f"attach '{second}' as b (read_only)")
    marts = lambda db: {  # noqa: E731
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'marts'", [db]
        ).fetchall()
    }
    differing = {}
    for table in sorted(marts("a") | marts("b")):
        if table not in marts("a") or table not in marts("b"):
            differing[table] = {"missing_in": "first" if table not in marts("a") else "second"}
            continue
        columns = {
            db: dict(
                con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_catalog = ? and table_schema = 'marts' and table_name = ? order by ordinal_position",
                    [db, table],
                ).fetchall()
            )
            for db in ("a", "b")
        }
        common = [c for c in columns["a"] if c in columns["b"]]
        selected = ", ".join(_rounded(c, columns["a"][c], digits) for c in common)
        only = {
            side: f"select {selected} from {x}.marts.{table} except all select {selected} from {y}.marts.{table}"
            for side, x, y in (("only_first", "a", "b"), ("only_second", "b", "a"))
        }
        counts = {side: con.execute(f"select count(*) from ({sql})").fetchone()[0] for side, sql in only.items()}
        one_only = sorted(set(columns["a"]) ^ set(columns["b"]))
        if any(counts.values()) or one_only:
            differing[table] = counts | {
                "rows": tuple(con.execute(f"select count(*) from {db}.marts.{table}").fetchone()[0] for db in "ab"),
                "columns_in_one_only": one_only,
                "examples": [
                    (side, row)
                    for side, sql in only.items()
                    for row in con.execute(f"{sql} order by all limit {show}").fetchall()
                ],
            }
    con.close()
    return differing
