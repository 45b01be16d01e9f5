"""Compare the marts of two warehouses, row by row: a DuckDB build's, and a Spark build's
(whose marts are views of Spark's Parquet in its DuckDB file, pipelines/transform/spark_marts.py).

    python -m pipelines.transform.compare_engines <first.duckdb> <second.duckdb>

The rule (docs/scale.md, "Equal, and how"): every column of every row is equal, exactly,
at the precision the mart stores (scores at their decimals, ranks as integers,
everything else as written). The one allowance is for the columns the marts store
through `stored_value`, at 12 significant digits (TWELVE_DIGIT_COLUMNS): there a value
may differ by at most one unit in the 12th significant digit of the smaller of the two.
p-values and q-values go through exp, ln and power, and the JVM's and DuckDB's differ
in the last bit. Rows within that allowance are counted and listed, never hidden; a row
that differs in any other way, or that has no counterpart, makes the mart differ.
Exit status 1 when a mart differs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from decimal import Decimal
from pathlib import Path

import duckdb

# The marts' columns stored through `stored_value` (dbt_project/macros/portable.sql),
# 12 significant digits; tests/test_compare_engines.py checks this against the models.
TWELVE_DIGIT_COLUMNS = {
    "fct_anomalies": {"statistic", "expected", "rho", "p_value", "q_value"},
    "fct_indicator_anomalies": {"stored_z", "raw_value", "expected_low", "expected_high", "centre", "scale"},
    "fct_target_forecasts": {"last_value", "forecast", "lo80", "hi80", "p_meet"},
}
STORED_SIGNIFICANT_DIGITS = 12
# Rows left over after the exact comparison that are paired one by one; past this, a
# mart differs wholesale and is reported as differing without reading them all.
MOST_ROWS_PAIRED = 10_000


def within_last_stored_digit(first: float | None, second: float | None) -> bool:
    """Equal, or both finite and apart by at most one unit in the 12th significant digit
    of the smaller, in decimal (each value as its shortest decimal form)."""
    if first is None or second is None:
        return first is None and second is None
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    if first == second:
        return True
    if not (math.isfinite(first) and math.isfinite(second)) or min(abs(first), abs(second)) == 0:
        return False
    smaller = Decimal(repr(min(abs(first), abs(second))))
    unit = Decimal(1).scaleb(smaller.adjusted() - (STORED_SIGNIFICANT_DIGITS - 1))
    return abs(Decimal(repr(first)) - Decimal(repr(second))) <= unit


def _pair_within_allowance(names: list[str], loose: set[str], first: list[tuple], second: list[tuple]):
    """Pair the rows found in one file only with the other file's, on every column
    outside `loose`; None unless each pair's `loose` columns are within the last stored
    digit (and every other column equal)."""
    exact = [i for i, c in enumerate(names) if c not in loose]
    key = lambda row: tuple(row[i] for i in exact)  # noqa: E731
    if len(first) != len(second) or len({key(r) for r in first}) != len(first):
        return None
    by_key = {key(r): r for r in second}
    pairs = []
    for row in first:
        other = by_key.get(key(row))
        if other is None:
            return None
        changed = [i for i in range(len(names)) if i not in exact and row[i] != other[i]]
        if not all(within_last_stored_digit(row[i], other[i]) for i in changed):
            return None
        pairs.append({names[i]: (row[i], other[i]) for i in changed} | {"row": dict(zip(names, row))})
    return pairs


def compare_warehouses(first: Path, second: Path, show: int = 5) -> dict[str, dict]:
    """Every mart of two warehouses (DuckDB files, one perhaps holding Spark's marts as
    views), row by row, columns matched by name. Returns {mart: found} for each mart that
    is not exactly equal: found["equal"] says whether it is equal by the rule (its rows
    within the allowance in found["within_last_digit"]); otherwise found has the counts of
    rows only in each file and a few of them."""
    con = duckdb.connect()
    con.execute(f"attach '{first}' as a (read_only)")
    con.execute(f"attach '{second}' as b (read_only)")
    marts = lambda db: {  # noqa: E731
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'marts'", [db]
        ).fetchall()
    }
    found_in = {"a": marts("a"), "b": marts("b")}
    differing = {}
    for table in sorted(found_in["a"] | found_in["b"]):
        if table not in found_in["a"] or table not in found_in["b"]:
            differing[table] = {"equal": False, "missing_in": "first" if table not in found_in["a"] else "second"}
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
        common = {c: t for c, t in columns["a"].items() if c in columns["b"]}
        selected = ", ".join(f'"{c}"' for c in common)
        only = {
            side: f"select {selected} from {x}.marts.{table} except all select {selected} from {y}.marts.{table}"
            for side, x, y in (("only_first", "a", "b"), ("only_second", "b", "a"))
        }
        counts = {side: con.execute(f"select count(*) from ({sql})").fetchone()[0] for side, sql in only.items()}
        one_only = sorted(set(columns["a"]) ^ set(columns["b"]))
        if not any(counts.values()) and not one_only:
            continue
        loose = TWELVE_DIGIT_COLUMNS.get(table, set()) & set(common)
        pairable = not one_only and loose and counts["only_first"] == counts["only_second"] <= MOST_ROWS_PAIRED
        limit = "" if pairable else f" limit {show}"
        rows = {side: con.execute(f"{sql} order by all{limit}").fetchall() for side, sql in only.items()}
        within = (
            _pair_within_allowance(list(common), loose, rows["only_first"], rows["only_second"]) if pairable else None
        )
        if within is not None:
            differing[table] = {"equal": True, "within_last_digit": within}
            continue
        differing[table] = counts | {
            "equal": False,
            "rows": tuple(con.execute(f"select count(*) from {db}.marts.{table}").fetchone()[0] for db in "ab"),
            "columns_in_one_only": one_only,
            "examples": [(side, row) for side, found in rows.items() for row in found[:show]],
        }
    con.close()
    return differing


def report(found: dict[str, dict]) -> list[str]:
    """compare_warehouses' findings as lines: each mart equal only within the last stored
    digit with its rows listed, and each mart that differs with its counts and examples."""
    lines = []
    for table, about in found.items():
        if about["equal"]:
            rows = about["within_last_digit"]
            lines.append(f"marts.{table}: equal; {len(rows)} rows within one unit of the 12th significant digit:")
            lines += ["  " + json.dumps(pair, ensure_ascii=False, default=str) for pair in rows]
        else:
            lines.append(f"marts.{table}: DIFFERS {json.dumps(about, ensure_ascii=False, default=str)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--show", type=int, default=3, help="rows to print per side when a mart differs")
    args = parser.parse_args(argv)
    found = compare_warehouses(args.first, args.second, args.show)
    for line in report(found):
        print(line)
    differing = [t for t, about in found.items() if not about["equal"]]
    print(f"{len(differing)} marts differ; {len(found) - len(differing)} equal only within the last stored digit")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
