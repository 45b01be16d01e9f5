"""A canonical, engine-neutral hash of each mart's rows, per period.

The ledger records these after every dbt build; `govperf verify` recomputes them
from the warehouse, and a published edition's manifest quotes the ones it reads.
The hash depends on the values only, never on the engine that wrote them, the row
order or the column order:

    row text      = a JSON object of the row, keys (column names) in sorted order:
                    a number as the shortest text of the double it is (so 85, 85.0
                    and DECIMAL 85.00 all read 85.0), text JSON-escaped, a date or
                    timestamp as its ISO text in a JSON string, a boolean true/false,
                    NULL null
    row digest    = SHA-256(row text), hex
    group digest  = SHA-256(the row digests of one (mart, period type, period), sorted, joined)

It is computed inside DuckDB (the marts are read there, whichever engine built them:
dbt-spark's marts are registered as views in the same file), so hashing 1.6 M
evidence rows costs seconds, not a Python loop over every row. A mart without a
`period` column is one group, keyed "all"; a mart with `period` but no
`period_type` is keyed "-:<period>".

A build rewrites a few periods; hashing every row of every period after each one
cost minutes at 10 M transactions (129 M evidence rows: 465 s). So a build also
records each group's *fingerprint*, DuckDB's own 64-bit hash() of every row summed
and with the row count (8 s for those 129 M rows), and the next build hashes
with SHA-256 only the groups whose fingerprint changed, carrying the others'
digests over from the last build's entry. That is sound because the next build
first proves the warehouse is the one the last entry describes (its file's SHA-256,
else a full recomputation: transform/assets.py); after an interrupted build, whose
changes were never recorded, only the fingerprints tell what it changed. A
fingerprint covers the mart's column names and types, DuckDB's version and the row
text's version, so a change to any of them hashes the mart again. It is never
evidence: it only decides what to recompute, and `govperf verify` and approvals
always recompute every digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

WHOLE = "all"
NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
NUMERIC |= {"FLOAT", "REAL", "DOUBLE"}


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


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by column_name",
        [table],
    ).fetchall()


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value_text(name: str, data_type: str) -> str:
    """SQL for one column's JSON text, by its type (see the module docstring)."""
    column = _identifier(name)
    kind = data_type.upper()
    if kind in NUMERIC or kind.startswith("DECIMAL"):
        text = f"cast(cast({column} as double) as varchar)"
    elif kind == "BOOLEAN":
        text = f"case when {column} then 'true' else 'false' end"
    elif kind in ("DATE", "TIME") or kind.startswith("TIMESTAMP"):
        text = f"cast(to_json(cast({column} as varchar)) as varchar)"
    else:
        text = f"cast(to_json({column}) as varchar)"
    return f"coalesce({text}, 'null')"


def _row_text(columns: list[tuple[str, str]]) -> str:
    parts = [f"'{_json_key(name)}:' || {_value_text(name, data_type)}" for name, data_type in columns]
    return "'{' || concat_ws(',', " + ", ".join(parts) + ") || '}'"


def _json_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''") + '"'


def mart_digests(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None
) -> dict[str, dict[str, dict[str, object]]]:
    """{mart: {period key: {"rows": n, "sha256": hex}}} for every mart (or `tables`)."""
    return digests_and_fingerprints(con, tables, fingerprint=False)[0]


Digests = dict[str, dict[str, dict[str, object]]]
Fingerprints = dict[str, dict[str, str]]


def digests_and_fingerprints(
    con: duckdb.DuckDBPyConnection,
    tables: Iterable[str] | None = None,
    known: tuple[Digests, Fingerprints] | None = None,
    fingerprint: bool = True,
) -> tuple[Digests, Fingerprints]:
    """The marts' digests, and their fingerprints (see the module docstring). `known`:
    the digests and fingerprints of the warehouse as it was; a group whose fingerprint
    is unchanged keeps its known digest, and only the others are hashed. Without
    `fingerprint` (a check that hashes everything anyway), no fingerprints."""
    digests: Digests = {}
    fingerprints: Fingerprints = {}
    known_digests, known_fingerprints = known or ({}, {})
    con.execute("set enable_progress_bar = false")  # a log, not a terminal
    for table in tables if tables is not None else mart_tables(con):
        columns = _columns(con, table)
        if not columns:
            continue
        names = {name for name, _ in columns}
        group = _group_columns(names)
        current = _fingerprints(con, table, columns) if fingerprint else {}
        kept = {
            key: known_digests[table][key]
            for key, value in current.items()
            if known_fingerprints.get(table, {}).get(key) == value and key in known_digests.get(table, {})
        }
        computed = {}
        if not fingerprint or set(current) - set(kept):
            stale = sorted(set(current) - set(kept))
            where = f"{_key_sql(names)} in ({', '.join(_quoted(key) for key in stale)})" if kept else None
            computed = {
                (WHOLE if "period" not in names else period_key(period_type, period)): {"rows": n, "sha256": digest}
                for period_type, period, n, digest in _group_digests(con, table, group, _row_text(columns), where)
            }
        digests[table] = dict(sorted((kept | computed).items()))
        if fingerprint:
            if set(digests[table]) != set(current):
                raise ValueError(f"marts.{table} changed while it was hashed")
            fingerprints[table] = current
    return digests, fingerprints


def _group_columns(names: set[str]) -> str:
    if "period" not in names:
        return "null as period_type, null as period"
    period_type = '"period_type"' if "period_type" in names else "null"
    return f"{period_type} as period_type, cast(period as varchar) as period"


def _key_sql(names: set[str]) -> str:
    """SQL for a row's group key, as period_key writes it (WHOLE for a mart without periods)."""
    if "period" not in names:
        return f"'{WHOLE}'"
    period_type = "coalesce(nullif(\"period_type\", ''), '-')" if "period_type" in names else "'-'"
    return f"{period_type} || ':' || coalesce(cast(period as varchar), 'None')"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Part of every fingerprint: a change to how _row_text writes a row must mean "hash again".
ROW_TEXT_VERSION = "1"
FLOATING = {"FLOAT", "REAL", "DOUBLE"}


def _fingerprints(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> dict:
    """{group key: fingerprint}: the mart's columns and types, DuckDB's version and the row
    text's version; then the group's rows, DuckDB's hash of each row's values summed, the
    same hashes hashed again and summed (a second, non-linear sum), and the negative
    zeros of its floating columns (hash() does not tell -0.0 from 0.0; the row text does)."""
    described = repr((sorted(columns), duckdb.__version__, ROW_TEXT_VERSION))
    header = hashlib.sha256(described.encode("utf-8")).hexdigest()[:16]
    quoted = {name: _identifier(name) for name, _ in columns}
    values = ", ".join(quoted[name] for name, _ in columns)
    negative_zeros = " + ".join(
        f"count_if({quoted[name]} = 0 and signbit({quoted[name]}))"
        for name, data_type in columns
        if data_type.upper() in FLOATING
    )
    modulo = 18446744073709551616  # 2^64: the sums stay the size of one hash
    rows = con.execute(
        f"select {_key_sql(set(quoted))} as key, count(*), sum(hash({values})::hugeint) % {modulo}, "
        f"sum(hash(hash({values}))::hugeint) % {modulo}, {negative_zeros or '0'} "
        f'from marts."{table}" group by all'
    ).fetchall()
    return {key: f"{header}:{n}:{first}:{second}:{zeros}" for key, n, first, second, zeros in rows}


ORDER = "period_type nulls first, period nulls first"
ROWS_PER_BATCH = 262_144
DIGEST_CHARS = 64  # a SHA-256 in hex


def _group_digests(
    con: duckdb.DuckDBPyConnection, table: str, group: str, row_text: str, where: str | None = None
) -> list[tuple]:
    """(period type, period, rows, SHA-256 of the group's sorted row digests joined), by group.

    The row digests come out of DuckDB sorted (a sort spills to disk within DuckDB's
    memory limit) and are hashed here as they stream past, a group at a time. An
    aggregate joining each group's digests inside DuckDB cannot spill: it held every
    group's digests in memory at once, and 27 M evidence rows (1 M transactions)
    outgrew a 1 GB limit."""
    source = f'select {group}, sha256({row_text}) as row_digest from marts."{table}"'
    if where:
        source += f" where {where}"
    groups = con.execute(
        f"select period_type, period, count(*) from ({source}) group by all order by {ORDER}"
    ).fetchall()
    stream = _SortedDigests(con.sql(f"select row_digest from ({source}) order by {ORDER}, row_digest"))
    result = []
    for period_type, period, n in groups:
        hashed = hashlib.sha256()
        for piece in stream.take(n):
            hashed.update(piece)
        result.append((period_type, period, n, hashed.hexdigest()))
    return result


class _SortedDigests:
    """A query's row digests, in its order, as one stream of text read a group at a time:
    an Arrow string column's data buffer is its values joined, in order."""

    def __init__(self, relation: duckdb.DuckDBPyRelation) -> None:
        self._batches = iter(relation.to_arrow_reader(ROWS_PER_BATCH))
        self._buffer = memoryview(b"")

    def take(self, digests: int) -> Iterator[memoryview]:
        wanted = digests * DIGEST_CHARS
        while wanted:
            if not self._buffer:
                self._buffer = self._next_batch()
            piece = self._buffer[:wanted]
            self._buffer = self._buffer[len(piece) :]
            wanted -= len(piece)
            yield piece

    def _next_batch(self) -> memoryview:
        try:
            column = next(self._batches).column(0)
        except StopIteration:
            raise ValueError("the mart has fewer rows than it counted: it changed while it was hashed") from None
        if not len(column):
            return memoryview(b"")
        if not pa.types.is_string(column.type):  # the layout read below: 32-bit offsets, then the text
            column = column.cast(pa.string())
        if column.null_count:
            raise ValueError("a row digest is null")
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
        start, end = int(offsets[0]), int(offsets[-1])
        if end - start != len(column) * DIGEST_CHARS:
            raise ValueError("a row digest is not a SHA-256 in hex")
        return memoryview(column.buffers()[2])[start:end]


def warehouse_digests(
    path: Path, known: tuple[Digests, Fingerprints] | None = None, fingerprint: bool = True
) -> tuple[Digests, Fingerprints]:
    """digests_and_fingerprints of the warehouse file at `path`, computed in a child
    process: hashing every row holds a few hundred MB in DuckDB, and a long-lived run
    process would keep that high-water mark for the rest of the run.
    The caller holds the warehouse lock; the child opens the file read-only."""
    from pipelines.process_tree import worker_pool

    with worker_pool(1) as pool:
        return pool.submit(_digests_of_file, str(path), known, fingerprint).result()


def _digests_of_file(
    path: str, known: tuple[Digests, Fingerprints] | None, fingerprint: bool
) -> tuple[Digests, Fingerprints]:
    from pipelines.warehouse import duckdb_connection

    con = duckdb_connection(path, read_only=True)
    try:
        return digests_and_fingerprints(con, known=known, fingerprint=fingerprint)
    finally:
        con.close()


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
