"""Submissions: which file's rows count for each (department, period) slice,
whether each department delivered by the deadline, and whether its volume is in
line with its own history.

Identical bytes are one submission: a file delivered again under another name is
a duplicate delivery (a warning), and its rows count once. A corrected
resubmission replaces exactly the slices it covers. Within a source
and period, files are ordered by when they were delivered (then by name); for
each department the latest file that holds its rows is current, and the same
department's rows in earlier files are superseded. A file taken out of the inbox
(withdrawn, or overwritten under the same name) moves to the lake's history
folder. Nothing is deleted: superseded and withdrawn rows stay queryable in the
warehouse's `history` schema.

    lake/submissions/<source>/<YYYY-MM>/register.parquet    one row per file and department
    lake/history/<source>/<YYYY-MM>/<sha256>.parquet        rows of files no longer in the inbox
    lake/history/{quarantine,file_loads}/<source>/<YYYY-MM>/<sha256>.parquet
"""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.checks.gate import CheckOutcome
from pipelines.ingest.land import FileLanding, history_paths, lake_paths, read_file_load
from pipelines.ingest.mapping import SourceMapping
from pipelines.parquet import write_table
from pipelines.reference import DepartmentRegistry
from pipelines.warehouse import duckdb_connection

REGISTER_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("period", pa.date32()),
        ("department_id", pa.string()),
        ("slice", pa.string()),  # the table's slice column's value, or '' (see CanonicalTable.slice_column)
        # the month of the rows' own dates (the table's activity date), else the period:
        # a resubmission replaces a (department, slice, month) of the rows it holds
        ("month", pa.date32()),
        ("file_name", pa.string()),
        ("file_hash", pa.string()),
        ("submitted_at", pa.timestamp("us")),
        ("deadline", pa.date32()),
        ("rows", pa.int64()),
        ("status", pa.string()),  # current | superseded | withdrawn
        ("superseded_by_file", pa.string()),
        ("superseded_by_hash", pa.string()),
    ]
)


def register_path(lake: Path, source: str, period: dt.date) -> Path:
    return lake / "submissions" / source / f"{period:%Y-%m}" / "register.parquet"


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def deadline_of(mapping: SourceMapping, period: dt.date) -> dt.date:
    """The last day a period's file is on time: the mapping's day of the month
    after the period (a quarter's period ends with its third month)."""
    end = period
    for _ in range(mapping.months_per_period - 1):
        end = _next_month(end)
    return _next_month(end).replace(day=mapping.submission_deadline_day)


def move_withdrawn_to_history(lake: Path, source: str, period: dt.date, current: set[str]) -> None:
    """A file no longer in the inbox no longer feeds the period; its landing is
    kept under history (its original stays archived)."""
    for kind in ("accepted", "quarantine", "file_load"):
        folder = lake_paths(lake, source, period, "x")[kind].parent
        for path in folder.glob("*.parquet"):
            if path.stem not in current:
                target = history_paths(lake, source, period, path.stem)[kind]
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)
    # A file delivered again after it was withdrawn is current again, not history too.
    for file_hash in current:
        for path in history_paths(lake, source, period, file_hash).values():
            path.unlink(missing_ok=True)


def distinct_deliveries(
    source: str, period: dt.date, delivered: list[tuple[str, FileLanding]]
) -> tuple[list[FileLanding], list[CheckOutcome]]:
    """Identical bytes are one submission, whatever their names. `delivered` pairs
    each inbox name with its landing (the same landing for the same bytes). Each
    content hash is kept once, and every further name it came under is a duplicate
    delivery: a warning naming both names, its rows counted once."""
    names: dict[str, list[str]] = {}
    landing_of: dict[str, FileLanding] = {}
    for name, landing in delivered:
        names.setdefault(landing.file_hash, []).append(name)
        landing_of.setdefault(landing.file_hash, landing)
    outcomes = []
    for file_hash, all_names in names.items():
        if len(all_names) < 2:
            continue
        landed_as = landing_of[file_hash].file_name
        kept = landed_as if landed_as in all_names else all_names[0]
        duplicates = [n for n in all_names if n != kept]
        outcomes.append(
            CheckOutcome(
                source=source,
                period=period,
                file_hash=file_hash,
                check_name="duplicate_delivery",
                severity="warning",
                passed=False,
                details=(
                    f"{'、'.join(duplicates)} 与 {kept} 内容相同 (sha256 {file_hash[:12]}…): "
                    "重复报送，按一次计 (duplicate delivery, rows counted once)"
                ),
            )
        )
    return list(landing_of.values()), outcomes


def build_register(mapping: SourceMapping, period: dt.date, landings: list[FileLanding], lake: Path) -> pa.Table:
    """One row per file, department, slice and month of the period's files, with the
    slice rule applied: per (department, slice, month of the rows' own dates) the file
    delivered last that holds such rows is current."""
    source = mapping.source
    history_loads = sorted((history_paths(lake, source, period, "x")["file_load"].parent).glob("*.parquet"))
    withdrawn = [read_file_load(p) for p in history_loads]
    files = [(x, lake_paths(lake, source, period, x.file_hash)["accepted"]) for x in landings]
    files += [(x, history_paths(lake, source, period, x.file_hash)["accepted"]) for x in withdrawn]
    files = [(x, p) for x, p in files if p.exists()]
    counts: dict[str, list[tuple[tuple[str, str, dt.date], int]]] = {}
    slice_sql = f"coalesce(cast({mapping.table.slice_column} as varchar), '')" if mapping.table.slice_column else "''"
    if files:
        con = duckdb_connection()  # its own connection: periods are ingested in parallel threads
        try:
            rows = con.execute(
                f"select _file_hash, department_id, {slice_sql}, coalesce(_month, _period), count(*) "
                "from read_parquet(?, union_by_name = true) group by all order by all",
                [[p.as_posix() for _, p in files]],
            ).fetchall()
        finally:
            con.close()
        for file_hash, department_id, slice_value, month, n in rows:
            counts.setdefault(file_hash, []).append(((department_id, slice_value, month), n))

    deadline = deadline_of(mapping, period)
    in_inbox = sorted(landings, key=lambda x: (x.submitted_at, x.file_name))
    latest_for: dict[tuple[str, str, dt.date], FileLanding] = {}
    for landing in in_inbox:
        for slice_key, _ in counts.get(landing.file_hash, []):
            latest_for[slice_key] = landing
    by_name = {x.file_name: x for x in landings}
    records = []
    for landing in in_inbox + withdrawn:
        still_in_inbox = landing in landings
        for (department_id, slice_value, month), n in counts.get(landing.file_hash, []):
            if still_in_inbox:
                winner = latest_for[(department_id, slice_value, month)]
            else:
                winner = by_name.get(landing.file_name)  # overwritten under its own name
            status = "current" if winner is landing else ("superseded" if winner else "withdrawn")
            records.append(
                {
                    "source": source,
                    "period": period,
                    "department_id": department_id,
                    "slice": slice_value,
                    "month": month,
                    "file_name": landing.file_name,
                    "file_hash": landing.file_hash,
                    "submitted_at": landing.submitted_at,
                    "deadline": deadline,
                    "rows": n,
                    "status": status,
                    "superseded_by_file": None if status == "current" or winner is None else winner.file_name,
                    "superseded_by_hash": None if status == "current" or winner is None else winner.file_hash,
                }
            )
    return pa.Table.from_pylist(records, schema=REGISTER_SCHEMA)


def write_register(lake: Path, source: str, period: dt.date, register: pa.Table) -> Path:
    return write_table(register, register_path(lake, source, period))


def read_register(lake: Path, source: str, period: dt.date) -> list[dict]:
    path = register_path(lake, source, period)
    return pq.read_table(path, schema=REGISTER_SCHEMA).to_pylist() if path.exists() else []


def active_departments(registry: DepartmentRegistry, period: dt.date, months: int = 1) -> set[str]:
    end = period
    for _ in range(months):
        end = _next_month(end)
    return {d.id for d in registry.departments if d.valid_from < end and (d.valid_to is None or d.valid_to >= period)}


def completeness_outcome(
    mapping: SourceMapping,
    period: dt.date,
    register: list[dict],
    registry: DepartmentRegistry,
    severity: str,
    today: dt.date,
) -> CheckOutcome:
    """Every department in office delivered its rows by the deadline. A
    department's delivery time is its first file's (a later correction does not
    make an on-time delivery late). Late and missing departments are listed."""
    deadline = deadline_of(mapping, period)
    active = active_departments(registry, period, mapping.months_per_period)
    first: dict[str, dt.datetime] = {}
    for row in register:
        seen = first.get(row["department_id"])
        if seen is None or row["submitted_at"] < seen:
            first[row["department_id"]] = row["submitted_at"]
    missing = sorted(active - set(first))
    late = sorted((d, (first[d].date() - deadline).days) for d in active & set(first) if first[d].date() > deadline)
    due = today > deadline
    parts = []
    if missing:
        parts.append(f"{len(missing)} 个部门{'未报送' if due else '尚未报送（未到截止日）'}: {_listed(missing)}")
    if late:
        by_days: dict[int, list[str]] = {}
        for department_id, days in late:
            by_days.setdefault(days, []).append(department_id)
        parts.append(
            f"{len(late)} 个部门逾期报送: "
            + "; ".join(f"逾期{days}天 {_listed(ids)}" for days, ids in sorted(by_days.items()))
        )
    if not register:
        parts.insert(0, f"{period:%Y-%m} 未收到 {mapping.source} 文件")
    details = "; ".join(parts) or f"{len(active)} 个在职部门均已按时报送"
    passed = not late and not (missing and due)
    return CheckOutcome(
        source=mapping.source,
        period=period,
        file_hash=None,
        check_name="departments_reported",
        severity=severity,
        passed=passed,
        details=f"截止 {deadline:%Y-%m-%d}: {details}",
    )


def _absorbed_before(registry: DepartmentRegistry, period: dt.date) -> dict[str, list[str]]:
    """For each department, those merged into it that left office before `period`,
    and those merged into them in turn (A into B, then B into C: C carries A's work)."""
    direct: dict[str, list[str]] = {}
    for d in registry.departments:
        if d.merged_into and d.valid_to is not None and d.valid_to < period:
            direct.setdefault(d.merged_into, []).append(d.id)

    def all_of(department_id: str, seen: frozenset[str]) -> list[str]:
        found = []
        for merged in direct.get(department_id, []):
            if merged not in seen:
                found += [merged, *all_of(merged, seen | {merged})]
        return found

    return {department_id: all_of(department_id, frozenset({department_id})) for department_id in direct}


def _listed(ids: list[str], most: int = 12) -> str:
    """Department ids for a person to read: the first few, then how many more."""
    return ", ".join(ids[:most]) + (f" 等 {len(ids)} 个" if len(ids) > most else "")


def volume_outcome(
    mapping: SourceMapping,
    period: dt.date,
    history: dict[dt.date, list[dict]],
    lookback: int,
    min_ratio: float,
    max_ratio: float,
    min_rows: int,
    severity: str,
    registry: DepartmentRegistry,
    months: int = 1,
) -> CheckOutcome:
    """Each department's current rows for the period against the median of its own
    previous `lookback` periods with data. Departments whose median is under
    `min_rows` are not judged (small counts swing by chance).

    Only departments in office during the period are judged: one merged into
    another, or dissolved, sends nothing after its valid_to, and that is no
    anomaly. A department's own history includes the rows of the departments
    merged into it before the period, whose work it took over; otherwise the
    absorbing department's first months after a merger look like a surge."""

    def current_rows(rows: list[dict]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for row in rows:
            if row["status"] == "current":
                totals[row["department_id"]] = totals.get(row["department_id"], 0) + row["rows"]
        return totals

    in_office = active_departments(registry, period, months)
    absorbed = _absorbed_before(registry, period)
    now = current_rows(history.get(period, []))
    earlier = [current_rows(history[p]) for p in sorted(history) if p < period][-lookback:]
    unusual = []
    judged = 0
    for department_id in sorted((set(now) | {d for month in earlier for d in month}) & in_office):
        own = [department_id, *absorbed.get(department_id, [])]
        past = [sum(month.get(d, 0) for d in own) for month in earlier if any(d in month for d in own)]
        if len(past) < 3:
            continue
        median = statistics.median(past)
        if median < min_rows:
            continue
        judged += 1
        ratio = now.get(department_id, 0) / median
        if not min_ratio <= ratio <= max_ratio:
            unusual.append(
                f"{department_id} {now.get(department_id, 0)} 行，近 {len(past)} 期中位数 {median:g}（{ratio:.0%}）"
            )
    details = (
        f"{len(unusual)} 个部门数据量异常（超出本部门近期中位数的 {min_ratio:g}–{max_ratio:g} 倍）: "
        + "; ".join(unusual)
        if unusual
        else f"{judged} 个部门的数据量与各自历史相符（在本部门近期中位数的 {min_ratio:g}–{max_ratio:g} 倍之内）"
    )
    return CheckOutcome(
        source=mapping.source,
        period=period,
        file_hash=None,
        check_name="volume_within_history",
        severity=severity,
        passed=not unusual,
        details=details,
    )
