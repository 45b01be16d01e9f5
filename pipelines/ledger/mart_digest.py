"""A canonical, engine-neutral hash of each mart's rows, per period.

The ledger records these after every dbt build; `govperf verify` recomputes them
from the warehouse, and a published edition's manifest quotes the ones it reads.
The hash depends on the values only, never on the engine, the row order or the
column order:

    row digest    = SHA-256(RFC 8785 canonical JSON of {column: value})
    group digest  = SHA-256(the row digests of one (mart, period type, period), sorted)

Values are the warehouse's typed values: a date is "YYYY-MM-DD", a timestamp ISO
8601, a double the shortest JSON number that reads back to it (so 85.0 and the
integer 85 hash alike, as they would from another engine), a decimal the
double nearest to it, NULL is null. A mart
without a `period` column is one group, keyed "all"; a mart with `period` but no
`period_type` is keyed "-:<period>".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

import duckdb

from pipelines.ledger.canonical import canonical_bytes

WHOLE = "all"


def period_key(period_type: str | None, period: object) -> str:
    """'month:2025-07-01', 'quarter:2025-07-01'; '-:2025-07-01' for a mart without a period type."""
    return f"{period_type or '-'}:{period}"


def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by table_name"
        ).fetchall()
    ]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
    ]


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        value = float(value)  # a DECIMAL(6,2) 84.83 and a DOUBLE 84.83 are the same stored score
    if isinstance(value, float) and value != value:
        return "NaN"  # RFC 8785 has no NaN; no stored score is NaN, but a hash must not fail on one
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def mart_digests(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None
) -> dict[str, dict[str, dict[str, object]]]:
    """{mart: {period key: {"rows": n, "sha256": hex}}} for every mart (or `tables`)."""
    result: dict[str, dict[str, dict[str, object]]] = {}
    for table in tables if tables is not None else mart_tables(con):
        columns = _columns(con, table)
        if not columns:
            continue
        has_period, has_type = "period" in columns, "period_type" in columns
        groups: dict[str, list[bytes]] = defaultdict(list)
        cursor = con.execute(f'select * from marts."{table}"')
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                record = {name: _json_value(value) for name, value in zip(columns, row, strict=True)}
                if has_period:
                    key = period_key(record["period_type"] if has_type else None, record["period"])
                else:
                    key = WHOLE
                groups[key].append(hashlib.sha256(canonical_bytes(record)).digest())
        result[table] = {
            key: {"rows": len(digests), "sha256": hashlib.sha256(b"".join(sorted(digests))).hexdigest()}
            for key, digests in sorted(groups.items())
        }
    return result


def differences(recorded: dict, current: dict) -> list[str]:
    """Each (mart, period) whose rows differ between two `mart_digests` results, in words."""
    problems = []
    for table in sorted(set(recorded) | set(current)):
        before, now = recorded.get(table), current.get(table)
        if before is None:
            problems.append(f"marts.{table}: in the warehouse but not in the last dbt build entry")
            continue
        if now is None:
            problems.append(f"marts.{table}: recorded by the last dbt build but missing from the warehouse")
            continue
        for key in sorted(set(before) | set(now)):
            b, n = before.get(key), now.get(key)
            if b == n:
                continue
            where = f"marts.{table} period {key}"
            if b is None:
                problems.append(f"{where}: {n['rows']} rows the last dbt build did not write")
            elif n is None:
                problems.append(f"{where}: {b['rows']} rows recorded by the last dbt build are gone")
            else:
                problems.append(
                    f"{where}: rows differ from the last dbt build ({b['rows']} rows sha256 {b['sha256'][:12]}… "
                    f"recorded, {n['rows']} rows sha256 {n['sha256'][:12]}… now)"
                )
    return problems
