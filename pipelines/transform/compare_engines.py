"""Compare the marts of two warehouses, row by row: a DuckDB build's, and a Spark build's
(whose marts are views of Spark's Parquet in its DuckDB file, pipelines/transform/spark_marts.py).

    python -m pipelines.transform.compare_engines <first.duckdb> <second.duckdb> [--digits N]

Columns are matched by name; every mart's rows only in one file are counted both ways
(EXCEPT ALL). Doubles are compared exactly, or at `--digits` significant digits.
Exit status 1 when a mart differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb


def _rounded(column: str, type_name: str, digits: int | None) -> str:
    quoted = f'"{column}"'
    if digits is None or type_name.upper() not in ("DOUBLE", "FLOAT", "REAL"):
        return quoted
    return (
        f"case when {quoted} is null or {quoted} = 0 or isnan({quoted}) or isinf({quoted}) then {quoted} "
        f"else round({quoted}, cast({digits - 1} - floor(log10(abs({quoted}))) as integer)) end as {quoted}"
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--digits", type=int, default=None, help="round doubles to this many significant digits")
    parser.add_argument("--show", type=int, default=3, help="rows to print per side when a mart differs")
    args = parser.parse_args(argv)
    differing = compare_warehouses(args.first, args.second, args.digits, args.show)
    for table, found in differing.items():
        print(f"marts.{table}: {json.dumps(found, ensure_ascii=False, default=str)}")
    print(f"{len(differing)} marts differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
