"""The ledger's mart digests: canonical and engine-neutral, per mart and period, and
`govperf verify --period` selecting the evidence of one month or quarter."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.audit.verify import PeriodFilter
from pipelines.ledger.mart_digest import differences, mart_digests, warehouse_digests


def _marts(rows_sql: str, column_types: str = "period date, period_type varchar, d varchar, score double") -> dict:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(f"create table marts.fct_x ({column_types})")
    con.execute(f"insert into marts.fct_x {rows_sql}")
    con.execute("create table marts.dim_y as select 'D01' as department_id")
    try:
        return mart_digests(con)
    finally:
        con.close()


ROWS = "values ('2025-07-01', 'month', 'D01', 84.83), ('2025-07-01', 'month', 'D02', 85.0), ('2025-08-01', 'month', 'D01', 70.1)"


def test_a_digest_depends_on_the_values_not_on_order_column_order_or_numeric_type():
    base = _marts(ROWS)
    assert set(base["fct_x"]) == {"month:2025-07-01", "month:2025-08-01"} and set(base["dim_y"]) == {"all"}
    assert base["fct_x"]["month:2025-07-01"]["rows"] == 2
    reordered = _marts(
        "select * from (" + ROWS + ") order by 3 desc",
    )
    assert reordered == base
    # Columns in another order, and 85.0 stored as a decimal: the same canonical rows.
    other = _marts(
        "select d, score, period_type, period from (" + ROWS + ") as t(period, period_type, d, score)",
        "d varchar, score decimal(6, 2), period_type varchar, period date",
    )
    assert other["fct_x"] == base["fct_x"]


def test_one_changed_value_names_its_mart_and_period_only():
    base = _marts(ROWS)
    changed = _marts(ROWS.replace("84.83", "84.88"))
    found = differences(base, changed)
    assert len(found) == 1 and found[0].startswith("marts.fct_x period month:2025-07-01: rows differ")
    assert differences(base, base) == []
    gone = {"fct_x": {k: v for k, v in base["fct_x"].items() if k != "month:2025-08-01"}, "dim_y": base["dim_y"]}
    assert differences(base, gone) == [
        "marts.fct_x period month:2025-08-01: 1 rows recorded by the last dbt build are gone"
    ]


@pytest.mark.parametrize(
    ("period", "month_key", "quarter_key", "date", "edition", "expected"),
    [
        ("2025-07", "month:2025-07-01", "quarter:2025-07-01", "2025-07-01", "2025-Q3", (True, True, True, True)),
        ("2025-08", "month:2025-07-01", "quarter:2025-07-01", "2025-09-03", "2025-07", (False, True, False, False)),
        ("2025-Q3", "month:2025-09-01", "quarter:2025-10-01", "2025-09-30", "2025-08", (True, False, True, True)),
    ],
)
def test_the_period_filter_selects_a_month_or_a_quarter_and_its_months(
    period, month_key, quarter_key, date, edition, expected
):
    selected = PeriodFilter(period)
    assert (
        selected.mart_key(month_key),
        selected.mart_key(quarter_key),
        selected.date(date),
        selected.edition(edition),
    ) == expected
    assert PeriodFilter(None).mart_key("anything") and selected.mart_key("all")


def test_the_row_text_is_a_json_object_with_sorted_keys_and_typed_values():
    import json

    from pipelines.ledger.mart_digest import _row_text

    con = duckdb.connect()
    con.execute(
        "create table t as select date '2025-07-01' as period, 85::bigint as n, 84.83::decimal(6, 2) as s, "
        "'引号\"与\\反斜杠' as txt, null::double as z, true as b"
    )
    columns = con.execute("select column_name, data_type from information_schema.columns order by 1").fetchall()
    text = con.execute(f"select {_row_text(columns)} from t").fetchone()[0]
    con.close()
    assert json.loads(text) == {
        "b": True,
        "n": 85.0,
        "period": "2025-07-01",
        "s": 84.83,
        "txt": '引号"与\\反斜杠',
        "z": None,
    }
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_a_warehouse_files_digests_from_the_child_process_equal_the_in_process_ones(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (period date, period_type varchar, d varchar, score double)")
    con.execute(f"insert into marts.fct_x {ROWS}")
    in_process = mart_digests(con)
    con.close()
    assert warehouse_digests(path)[0] == in_process
    assert in_process["fct_x"]["month:2025-08-01"]["rows"] == 1


def test_streamed_group_digests_equal_the_definition_computed_in_one_sql_aggregate(monkeypatch):
    """The digest is defined as SHA-256 of a group's sorted row digests joined (the
    one-aggregate SQL below, as earlier builds recorded it); hashing them as they
    stream out of DuckDB, across many small batches, must give the same."""
    from pipelines.ledger import mart_digest

    monkeypatch.setattr(mart_digest, "ROWS_PER_BATCH", 3)  # groups straddle batches
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (period date, period_type varchar, d varchar, score double)")
    con.execute(
        "insert into marts.fct_x select date '2025-01-01' + to_months(i % 4), "
        "case when i % 5 = 0 then null else 'month' end, 'D' || i, i / 7 from range(50) as t(i)"
    )
    con.execute("create table marts.dim_y as select 'D' || i as department_id from range(8) as t(i)")
    streamed = mart_digests(con)
    for table, group in (
        ("fct_x", '"period_type" as period_type, cast(period as varchar) as period'),
        ("dim_y", "null as period_type, null as period"),
    ):
        row_text = mart_digest._row_text(mart_digest._columns(con, table))
        defined = con.execute(
            f"select period_type, period, count(*), sha256(string_agg(row_digest, '' order by row_digest)) "
            f'from (select {group}, sha256({row_text}) as row_digest from marts."{table}") group by all'
        ).fetchall()
        assert {
            (mart_digest.WHOLE if table == "dim_y" else mart_digest.period_key(t, p)): {"rows": n, "sha256": h}
            for t, p, n, h in defined
        } == streamed[table]
    assert len(streamed["fct_x"]) == 8  # four months, each with and without a period type


def test_a_build_hashes_again_only_the_groups_whose_fingerprint_changed(monkeypatch):
    """After a build, only the periods it changed are hashed with SHA-256; the others
    keep the last build's digests, and the result equals hashing everything."""
    from pipelines.ledger import mart_digest

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (period date, period_type varchar, d varchar, score double)")
    con.execute(
        "insert into marts.fct_x select date '2025-01-01' + to_months(i % 4), "
        "case when i % 5 = 0 then null else 'month' end, 'D' || i, i / 7 from range(60) as t(i)"
    )
    con.execute("create table marts.dim_y as select 'D' || i as department_id from range(8) as t(i)")
    first, fingerprints = mart_digest.digests_and_fingerprints(con)
    assert first == mart_digests(con)
    # The fingerprints name the same groups as the digests (the keys are built in SQL).
    assert {t: set(g) for t, g in fingerprints.items()} == {t: set(g) for t, g in first.items()}

    hashed: list[tuple[str, str | None]] = []
    real = mart_digest._group_digests

    def counting(con, table, group, row_text, where=None):
        hashed.append((table, where))
        return real(con, table, group, row_text, where)

    monkeypatch.setattr(mart_digest, "_group_digests", counting)
    again, same = mart_digest.digests_and_fingerprints(con, known=(first, fingerprints))
    assert (again, same) == (first, fingerprints) and hashed == []

    # A build rewrites March's month rows and the department list; January is untouched.
    con.execute("update marts.fct_x set score = score + 1 where period = '2025-03-01' and period_type = 'month'")
    con.execute("insert into marts.dim_y values ('D99')")
    after, _ = mart_digest.digests_and_fingerprints(con, known=(first, fingerprints))
    assert [table for table, _ in hashed] == ["dim_y", "fct_x"]
    assert after == mart_digests(con)  # as if everything were hashed again
    assert "'month:2025-03-01'" in hashed[1][1] and "2025-01" not in hashed[1][1]
    assert after["fct_x"]["month:2025-03-01"] != first["fct_x"]["month:2025-03-01"]
    assert after["fct_x"]["-:2025-03-01"] == first["fct_x"]["-:2025-03-01"]


def test_a_fingerprint_from_elsewhere_never_carries_a_digest_over():
    """Known digests without fingerprints (an older ledger), or fingerprints of other
    rows: every group is hashed again."""
    from pipelines.ledger import mart_digest

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (period date, period_type varchar, d varchar, score double)")
    con.execute(f"insert into marts.fct_x {ROWS}")
    truth, fingerprints = mart_digest.digests_and_fingerprints(con)
    forged = {t: {k: {"rows": v["rows"], "sha256": "0" * 64} for k, v in g.items()} for t, g in truth.items()}
    assert mart_digest.digests_and_fingerprints(con, known=(forged, {}))[0] == truth
    other = {t: dict.fromkeys(g, "1:2:3") for t, g in fingerprints.items()}
    assert mart_digest.digests_and_fingerprints(con, known=(forged, other))[0] == truth


@pytest.mark.parametrize(
    "change",
    [
        "alter table marts.fct_x rename column d to department",  # same values, another name
        "update marts.fct_x set score = cast('-0.0' as double) where score = 0",  # hash(-0.0) = hash(0.0)
        "alter table marts.fct_x alter delivered_at type timestamptz",  # the same instant: equal hashes, other text
    ],
    ids=["column_renamed", "negative_zero", "type_changed"],
)
def test_what_the_row_text_sees_and_duckdbs_hash_does_not_is_hashed_again(change):
    """The fingerprint must change whenever the canonical row text can: else a stale
    digest would be carried over, and verify would fail on every build after."""
    from pipelines.ledger import mart_digest

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (period date, period_type varchar, d varchar, score double)")
    con.execute(f"insert into marts.fct_x {ROWS}")
    con.execute("update marts.fct_x set score = 0.0 where d = 'D01' and period = '2025-08-01'")
    con.execute("alter table marts.fct_x add column delivered_at timestamp default timestamp '2025-09-01 08:00:00'")
    known = mart_digest.digests_and_fingerprints(con)
    con.execute(change)
    after, _ = mart_digest.digests_and_fingerprints(con, known=known)
    assert after == mart_digests(con)
    assert after != known[0]
