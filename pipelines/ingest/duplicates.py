"""Rows repeated inside one file (the mapping's `duplicates`, pipelines/ingest/mapping.py).

Applied to `extract_checked` after cleaning, so rows are compared by their typed
canonical values (a case written "SX1" and " SX1" is one case), and each row keeps
every other reason it fails. Identical copies: the first stays, the others are
quarantined "与第 N 行重复 (duplicate of line N)". Rows with the same key and other
content conflict: by default each is quarantined naming the others' lines; with
`later_wins` the last line of the key is kept and the earlier ones are quarantined
as superseded by it. `block` leaves them all to land, for the quality suite's
uniqueness expectation to block the month.
"""

from __future__ import annotations

import duckdb

from pipelines.ingest.mapping import SourceMapping

SEPARATOR = "chr(31)"  # the unit separator: no value holds it once masked and trimmed


def mark_duplicates(con: duckdb.DuckDBPyConnection, mapping: SourceMapping) -> None:
    """Add the duplicate and conflict reasons to extract_checked's `_reason`."""
    rules = mapping.duplicates
    if rules.identical == "block" and rules.conflicts == "block":
        return
    columns = [c.name for c in mapping.table.columns]
    content = "md5(concat_ws(" + SEPARATOR + ", " + ", ".join(f"coalesce({c}::varchar, chr(0))" for c in columns) + "))"
    key = [f'"{c}"' for c in mapping.duplicate_key]
    keyed = " and ".join(f"{k} is not null" for k in key) if key else "false"
    by_key = ", ".join(key) if key else "null"
    duplicate = (
        "case when _line > __first_same then '与第 ' || __first_same || ' 行重复 (duplicate of line ' "
        "|| __first_same || ')' end"
        if rules.identical == "quarantine"
        else "null"
    )
    others = "array_to_string(list_filter(__key_lines, lambda x: x <> _line), '、')"
    conflict = {
        "quarantine": (
            f"'与第 ' || {others} || ' 行冲突：同一{_key_words(mapping)}内容不同 (conflicts with line(s) ' "
            f"|| {others} || ': the same key, other content)'"
        ),
        "later_wins": (
            "case when _line < __last_line then '以同一键较后的第 ' || __last_line || ' 行为准 "
            "(superseded by line ' || __last_line || ', the later one)' end"
        ),
        "block": "null",
    }[rules.conflicts]
    reason = f"case when __conflict then {conflict} else {duplicate} end"
    con.execute(
        f"""
        create or replace table extract_checked as
        with contents as (
            select *, {content} as __content, {keyed} as __keyed from extract_checked
        ),
        compared as (
            select *,
                min(_line) over (partition by __content) as __first_same,
                case when __keyed then max(_line) over (partition by __keyed, {by_key}) end as __last_line,
                __keyed and min(__content) over (partition by __keyed, {by_key})
                    <> max(__content) over (partition by __keyed, {by_key}) as __conflict,
                list(_line) over (
                    partition by __keyed, {by_key} order by _line
                    rows between unbounded preceding and unbounded following
                ) as __key_lines
            from contents
        )
        select * exclude (__content, __keyed, __first_same, __last_line, __conflict, __key_lines)
            replace (nullif(concat_ws('; ', _reason, {reason}), '') as _reason)
        from compared
        """
    )


def _key_words(mapping: SourceMapping) -> str:
    # Headers are text from the mapping: quoted for the SQL string they go into.
    return ("、".join(str(mapping.columns.get(c, c)) for c in mapping.duplicate_key) or "键").replace("'", "''")
