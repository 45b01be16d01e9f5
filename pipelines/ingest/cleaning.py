"""Cleaning and validation in SQL: one SELECT over the extract's rows that gives
typed canonical columns, each row's line and every reason it fails.

The same for every format: readers put the file's text in `extract_rows`, and
land.py writes what this query accepts and quarantines.
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pyarrow as pa

from pipelines.ingest import keywords
from pipelines.ingest.canonical import DUCKDB_TYPES, CanonicalTable, Column
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.masking import mask_sql
from pipelines.ingest.readers import ExtractError
from pipelines.ingest.workbook_reader import LAST_SERIAL
from pipelines.reference import DepartmentRegistry

FULL_WIDTH = "０１２３４５６７８９．，－＋：／　"
HALF_WIDTH = "0123456789.,-+:/ "
TYPE_WORDS = {
    "integer": "整数 (integer)",
    "number": "数值 (number)",
    "date": "日期 (date)",
    "timestamp": "日期时间 (timestamp)",
    "boolean": "是/否 (yes/no)",
    "string": "文本 (text)",
}
# ISO 8601 with a zone: 2026-03-05T01:30:00Z, 2026-03-05 09:30:00.5+08:00, …+0800.
ISO_WITH_ZONE = r"\s*\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)\s*"
# 05/03/2026, 5-3-2026 09:30: a day and a month, in an order only the mapping can say.
DAY_MONTH_AMBIGUOUS = r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{4}(\s|$)"
BOOLEAN_TRUE = ("是", "true", "1", "y", "yes", "t", "√")
BOOLEAN_FALSE = ("否", "false", "0", "n", "no", "f", "×")
# Free-text columns that may carry citizens' personal data: names are looked for
# here (and in quarantined raw text); ID and phone numbers in every text value.
FREE_TEXT = {"comment", "content", "remarks", "reason"}
# Column types whose text is masked before it is typed. A date, time or yes/no
# that parses holds no personal data, and one that does not is quarantined with
# its text in the reason, which is masked.
MASKED_TYPES = ("string", "integer", "number")


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _list(values: list[str]) -> str:
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def _trimmed_expr(header: str) -> str:
    """Without spaces, tabs and the full-width space (typed in Chinese input mode)
    around it. Most values have none, and the cheap test spares them the trim."""
    value = _ident(header)
    needs_trim = (
        f"starts_with({value}, ' ') or ends_with({value}, ' ') "
        f"or contains({value}, chr(9)) or contains({value}, chr(12288))"
    )
    return f"(case when {needs_trim} then trim({value}, ' ' || chr(9) || chr(12288)) else {value} end)"


def _text_expr(trimmed: str, mapping: SourceMapping) -> str:
    """NULL for the placeholders offices use for 'no value'."""
    longest = max((len(v) for v in mapping.missing_values), default=0)
    placeholders = ", ".join(sql_literal(v) for v in mapping.missing_values)
    # Placeholders are short: the length test spares the list for most values.
    return f"(case when length({trimmed}) <= {longest} and {trimmed} in ({placeholders}) then null else {trimmed} end)"


def _typed_expr(column: Column, text: str, mapping: SourceMapping) -> str:
    """Typed value of `text`. Each type tries the plain form first, with a cast,
    and only then the forms offices write by hand, which cost a regex."""
    half = f"translate({text}, {sql_literal(FULL_WIDTH)}, {sql_literal(HALF_WIDTH)})"
    # The whole text must be a number, optionally followed by a unit word
    # ("5个工作日", "12.5%"); "2025-03-01" or "1.5万" is not silently cut short.
    written_number = (
        f"try_cast(nullif(regexp_extract(replace({half}, ',', ''), "
        "'^\\s*([+-]?[0-9]+(\\.[0-9]+)?)\\s*(%|个?工作日|天|日|小时|分|元|件|个|人|次|项)?\\s*$', 1), '') as double)"
    )
    if column.type == "string":
        return text
    # CASE, not COALESCE: DuckDB evaluates a CASE branch only for the rows that reach it.
    if column.type == "number":
        return f"(case when try_cast({text} as double) is not null then try_cast({text} as double) else {written_number} end)"
    if column.type == "integer":
        return (
            f"(case when try_cast({text} as bigint) is not null then try_cast({text} as bigint) "
            f"when {written_number} = floor({written_number}) then try_cast({written_number} as bigint) end)"
        )
    if column.type == "date":
        formats = _list(mapping.date_formats + mapping.timestamp_formats + ["%Y年%m月"])
        zoned = f"regexp_full_match({text}, '{ISO_WITH_ZONE}')"  # the day where the mapping's zone is
        return (
            f"(case when {zoned} then timezone({sql_literal(mapping.timezone)}, try_cast({text} as timestamptz))::date "
            f"when try_cast({text} as date) is not null then try_cast({text} as date) "
            f"{_serial_date_branch(half, mapping, '::date')}"
            f"else try_strptime({half}, {formats})::date end)"
        )
    if column.type == "timestamp":
        formats = _list(mapping.timestamp_formats + mapping.date_formats)
        # With its zone: to the mapping's local time (a bare cast would drop the zone).
        zoned = f"regexp_full_match({text}, '{ISO_WITH_ZONE}')"
        return (
            f"(case when {zoned} then timezone({sql_literal(mapping.timezone)}, try_cast({text} as timestamptz)) "
            f"when try_cast({text} as timestamp) is not null then try_cast({text} as timestamp) "
            f"{_serial_date_branch(half, mapping, '')}"
            f"else try_strptime({half}, {formats}) end)"
        )
    if column.type == "boolean":
        return (
            f"(case when lower({text}) in ({', '.join(sql_literal(v) for v in BOOLEAN_TRUE)}) then true "
            f"when lower({text}) in ({', '.join(sql_literal(v) for v in BOOLEAN_FALSE)}) then false end)"
        )
    raise AssertionError(column.type)


def _serial_date_branch(text: str, mapping: SourceMapping, cast: str) -> str:
    """With the mapping's `serial_dates`, a number is an Excel serial date (1900 system:
    day 1 is 1900-01-01 and day 60, 1900-02-29, never was; pipelines/ingest/workbook_reader.py)."""
    if not mapping.serial_dates:
        return ""
    number = f"try_cast(regexp_extract({text}, '^\\s*([0-9]+(\\.[0-9]+)?)\\s*$', 1) as double)"
    epoch = f"(case when {number} < 60 then timestamp '1899-12-31' else timestamp '1899-12-30' end)"
    return (
        f"when {number} between 1 and {LAST_SERIAL + 1} and not ({number} >= 60 and {number} < 61) "
        f"then ({epoch} + to_seconds(round({number} * 86400)::bigint)){cast} "
    )


def _mapped_value(column: str, text: str, mapping: SourceMapping) -> str:
    value_map = mapping.values.get(column)
    if not value_map:
        return text
    cases = " ".join(f"when {sql_literal(k)} then {sql_literal(v)}" for k, v in value_map.items())
    return f"(case {text} {cases} else {text} end)"


def title_constants(mapping: SourceMapping, title_lines: list[str], file_name: str) -> dict[str, str]:
    """Values the mapping reads from the title lines above the header."""
    found = {}
    for column, pattern in mapping.title_values.items():
        match = next((m for line in title_lines if (m := re.search(pattern, line))), None)
        if match is None:
            raise ExtractError(
                f"{file_name}: lines 1-{len(title_lines)}: no title line matches {pattern!r} "
                f"(needed for {column}); title lines: {title_lines}"
            )
        found[column] = match["value"].strip()
    return found


def clean_sql(
    mapping: SourceMapping, period: dt.date, headers: list[str], constants: dict[str, str], delivered_at: dt.datetime
) -> str:
    """One SELECT giving typed canonical columns, _line and the reasons a row fails."""
    table: CanonicalTable = mapping.table
    source_rows = "extract_rows"
    header_of = dict(mapping.columns)
    if mapping.unpivot:
        unpivot = mapping.unpivot
        names = unpivot.names(headers)
        keys = ", ".join(_ident(h) for h in names)
        question_map = " ".join(f"when {sql_literal(h)} then {sql_literal(q)}" for h, q in names.items())
        source_rows = (
            f"(select *, case __question {question_map} end as __question_id "
            f"from extract_rows unpivot include nulls (__value for __question in ({keys})))"
        )
        header_of[unpivot.name_column] = "__question_id"
        header_of[unpivot.value_column] = "__value"

    trims, texts, masks, typed, reasons = [], [], [], [], []
    for column in table.columns:
        header = header_of.get(column.name)
        if column.closed_flag:
            continue  # decided from the typed row (closed_sql, in the last step)
        if column.keywords_of:
            # Read from the masked text of the free-text column, never from the extract.
            source = f"__text_{column.keywords_of}"
            produced = any(t.endswith(f" as {source}") for t in texts)
            typed.append(f"{keywords.keywords_sql(source) if produced else 'null::varchar'} as {column.name}")
            continue
        if header is None and column.name in constants:
            text = _mapped_value(column.name, sql_literal(constants[column.name]), mapping)
            label = f"常量 {column.name}".replace("'", "''")
        elif header is None:
            typed.append(f"null::{DUCKDB_TYPES[column.type]} as {column.name}")
            continue
        else:
            trims.append(f"{_trimmed_expr(header)} as __trim_{column.name}")
            text = _text_expr(f"__trim_{column.name}", mapping)
            if column.name in mapping.carry_down:  # blank beneath a label written once: the label above
                above = "over (order by _line rows between unbounded preceding and 1 preceding)"
                label_line = f"last_value(case when {text} is not null then _line end ignore nulls) {above}"
                # Never across a line the parser rejected: the label there may be the one meant.
                last_rejected = "(select max(r._line) from extract_rejects as r where r._line < trimmed._line)"
                text = (
                    f"coalesce({text}, case when coalesce({last_rejected}, 0) < {label_line} "
                    f"then last_value({text} ignore nulls) {above} end)"
                )
            text = _mapped_value(column.name, text, mapping)
            label = header.replace("'", "''")
        source_text = f"__text_{column.name}"
        texts.append(f"{text} as {source_text}")
        if header is not None:
            # A NUL byte is never stored: it is how a damaged export or a binary
            # paste shows, and it truncates the text in C-based tools downstream.
            reasons.append(
                f"case when contains({source_text}, chr(0)) then "
                f"'列「{label}」含 NUL 字节 (NUL byte in column {label})' end"
            )
        if column.type in MASKED_TYPES and column.personal and not column.department:
            # Personal data is masked in the text itself: typed values, reasons and
            # everything after them only ever see the masked text.
            kind = "identifier" if column.identifier else "free_text" if column.name in FREE_TEXT else "field"
            masks.append(f"{mask_sql(source_text, kind)} as {source_text}")
        if column.department:
            pass  # resolved after typing, by the row's date (below)
        else:
            value = _typed_expr(column, source_text, mapping)
            typed.append(f"{value} as {column.name}")
            if column.type != "string":
                reasons.append(
                    f"case when {source_text} is not null and {column.name} is null then "
                    f"'列「{label}」的值「' || left({source_text}, 40) || '」不是有效的{TYPE_WORDS[column.type]}'"
                    + (
                        f" || case when regexp_matches({source_text}, '{DAY_MONTH_AMBIGUOUS}') then "
                        f"'：日、月次序不明 (day and month order ambiguous: declare %d/%m/%Y or %m/%d/%Y "
                        f"in the mapping''s date_formats or timestamp_formats)' else '' end"
                        if column.type in ("date", "timestamp")
                        else ""
                    )
                    + " end"
                )
        if column.required:
            reasons.append(f"case when {source_text} is null then '必填列「{label}」为空 (required value missing)' end")
        if column.allowed:
            allowed = ", ".join(sql_literal(v) for v in column.allowed)
            shown = "/".join(column.allowed)
            reasons.append(
                f"case when {source_text} is not null and {source_text} not in ({allowed}) then "
                f"'列「{label}」的值「' || left({source_text}, 40) || '」不在允许值 ({shown}) 之中' end"
            )
        if column.department:
            activity = f"{table.activity_date}::date" if table.activity_date else f"date '{period.isoformat()}'"
            reasons.append(
                f"case when __dept_candidates is not null then "
                f"'部门「' || {source_text} || '」可能是 ' || __dept_candidates || '，按本行日期仍无法区分 "
                f"(ambiguous department: ' || __dept_candidates || ' on this row''s date; scope the aliases by dates)' "
                f"when {source_text} is not null and __dept_id is null then "
                f"'未知部门「' || {source_text} || '」 (unknown department; add it to departments.yaml or fix the extract)' "
                f"when __dept_id is not null and {activity} is not null and "
                f"({activity} < __dept_valid_from or {activity} > coalesce(__dept_valid_to, date '9999-12-31')) then "
                f"'部门「' || {source_text} || '」在 ' || strftime({activity}, '%Y-%m-%d') || ' 不在存续期 (' || "
                f"strftime(__dept_valid_from, '%Y-%m-%d') || ' 至 ' || coalesce(strftime(__dept_valid_to, '%Y-%m-%d'), '今') || ')' "
                f"|| coalesce('，已并入 ' || __dept_merged_into, '') end"
            )

    dept_column = next(c for c in table.columns if c.department)
    on_the_day = f"t.{table.activity_date}::date" if table.activity_date else f"date '{period.isoformat()}'"
    delivered = f"timestamp '{delivered_at:%Y-%m-%d %H:%M:%S}'"
    typed_names = {c.name for c in table.columns}
    reasons += [
        f"case when not coalesce({rule.sql.format(delivered_at=delivered)}, true) then '{rule.reason}' end"
        for rule in table.rules
        if {rule.column} <= typed_names
    ]
    closed = closed_sql(table, mapping)
    if closed and mapping.closed_when == "status":
        reasons.append(
            f"case when status = 'closed' and {table.closed_time} is null then "
            f"'状态为已办结但无办结时间 (status closed without a close time; closed_when: status)' end"
        )
    # Three steps, so that each value is parsed once: text, then typed values,
    # then the reasons a row fails, which read both.
    # The department a row names is the one that text named on the row's date (an old
    # name, an abbreviation or an agency code has its own days); a text naming one
    # department at some time only is that department, left to the in-office check;
    # a text still naming several is ambiguous, and its row is quarantined.
    in_window = f"{on_the_day} between l.window_from and l.window_to"
    return f"""
        with trimmed as (
            select _line, row_number() over () as __row, {", ".join(trims) or "null as __none"} from {source_rows}
        ),
        unmasked as (
            select _line, __row, {", ".join(texts)} from trimmed
        ),
        texts as (
            select * {f"replace ({', '.join(masks)})" if masks else ""} from unmasked
        ),
        typed as (
            select texts.*{"".join(", " + t for t in typed)}
            from texts
        ),
        named as (
            select t.__row,
                   count(distinct l.department_id) filter (where {in_window}) as n_on_day,
                   min(l.department_id) filter (where {in_window}) as on_day,
                   count(distinct l.department_id) as n_ever,
                   min(l.department_id) as ever,
                   array_to_string(list_sort(list(distinct l.department_id) filter (where {in_window})), '、') as list_on_day,
                   array_to_string(list_sort(list(distinct l.department_id)), '、') as list_ever
            from typed as t
            inner join department_lookup as l on l.ref = t.__text_{dept_column.name}
            group by t.__row
        ),
        resolved as (
            select typed.*,
                   case when named.n_on_day = 1 then named.on_day
                        when named.n_on_day = 0 and named.n_ever = 1 then named.ever end as __dept_id,
                   case when named.n_on_day > 1 then named.list_on_day
                        when named.n_on_day = 0 and named.n_ever > 1 then named.list_ever end as __dept_candidates
            from typed left join named using (__row)
        ),
        with_department as (
            select resolved.*, __dept_id as {dept_column.name}, info.valid_from as __dept_valid_from,
                   info.valid_to as __dept_valid_to, info.merged_into as __dept_merged_into
            from resolved left join department_info as info on info.department_id = resolved.__dept_id
        )
        select *{closed}, nullif(concat_ws('; ', {", ".join(reasons) or "null"}), '') as _reason
        from with_department
    """


def closed_sql(table: CanonicalTable, mapping: SourceMapping) -> str:
    """`, <expr> as <flag>` for a table with a closed flag, else ''. By default a case is
    closed when it has a close time, whatever its status (an extract often leaves the
    status stale); with `closed_when: status`, only when its status says closed."""
    flag = next((c for c in table.columns if c.closed_flag), None)
    if flag is None or table.closed_time is None:
        return ""
    if mapping.closed_when == "status":
        return f", coalesce(status = 'closed' and {table.closed_time} is not null, false) as {flag.name}"
    return f", {table.closed_time} is not null as {flag.name}"


def register_departments(con: duckdb.DuckDBPyConnection, registry: DepartmentRegistry) -> None:
    """department_lookup: each text naming a department, with the days it does
    (reference.py Department.references); department_info: each department's life."""
    lookup, info = [], []
    for d in registry.departments:
        info.append(
            {"department_id": d.id, "valid_from": d.valid_from, "valid_to": d.valid_to, "merged_into": d.merged_into}
        )
        for text, start, end in d.references():
            lookup.append({"ref": text, "department_id": d.id, "window_from": start, "window_to": end})
    for name, rows in (("department_lookup", lookup), ("department_info", info)):
        con.register(f"{name}_arrow", pa.Table.from_pylist(rows))
        con.execute(f"create or replace table {name} as select * from {name}_arrow")
        con.unregister(f"{name}_arrow")
