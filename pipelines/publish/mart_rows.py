"""Rows of the marts as dicts, for the bulletin's sections (the warehouse connection
itself comes from pipelines.warehouse.read_warehouse)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

Row = dict[str, Any]


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any]) -> list[Row]:
    # DuckDB rejects unused named parameters, so bind only the `$name`s the query uses.
    used = set(re.findall(r"\$(\w+)", sql))
    cursor = con.execute(sql, {name: value for name, value in params.items() if name in used})
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Marts added after a warehouse was built may be missing from it; their sections then say so."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = ?", [table]
        ).fetchall()[0][0]
    )


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns of a mart (none when it is missing): a column added later is absent from an older warehouse."""
    found = con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ?", [table]
    ).fetchall()
    return {name for (name,) in found}
