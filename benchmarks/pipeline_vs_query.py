"""Time the whole pipeline against one hand-written DuckDB query.

    .venv/bin/python benchmarks/pipeline_vs_query.py --transactions 1000000
    .venv/bin/python benchmarks/pipeline_vs_query.py --transactions 10000000

1. Generates the sample city with N service transactions (GBK CSV, like the
   province's export; not timed as part of either side).
2. Runs the pipeline through Dagster on a tiny city (30,000 transactions, same
   months and files) after a warm-up run, to measure the fixed cost: Dagster, dbt
   and GX start-up, and the per-file work on ~95 files.
3. Runs the whole pipeline (every source, every month, extract to bulletin).
4. Times one hand-written DuckDB query that computes the same per-department-month
   transaction indicators from the same files (decoding GBK first, since DuckDB
   cannot read it here), and checks its figures against the marts.
5. Prints both times, their ratio, the margin over start-up, and peak memory.

Target (issue 13): (whole pipeline − fixed start-up) ≤ 2 × the query, in the same run.
"""

from __future__ import annotations

import argparse
import codecs
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST, LAST = "2025-01", "2026-03"


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def _use_home(home: Path, inbox: Path, config: Path | None = None) -> None:
    os.environ["GOVPERF_HOME"] = str(home)
    os.environ["GOVPERF_INBOX"] = str(inbox)
    if config is None:
        os.environ.pop("GOVPERF_CONFIG", None)
    else:
        os.environ["GOVPERF_CONFIG"] = str(config)
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    for derived in ("GOVPERF_DUCKDB", "GOVPERF_LAKE"):
        os.environ.pop(derived, None)


def _generate(inbox: Path, transactions: int) -> float:
    from pipelines.sample.generator import generate_city

    started = time.perf_counter()
    generate_city(
        inbox,
        departments_yaml=ROOT / "sources/reference/departments.yaml",
        seed=20250101,
        first_month=FIRST,
        last_month=LAST,
        transactions=transactions,
    )
    return time.perf_counter() - started


def _config_with_memory_limit(workdir: Path, memory_limit: str) -> Path:
    """The sample's configuration with DuckDB's memory limit raised: the sample's 1GB
    is sized for its 60,000 transactions, and the transaction medians of millions
    cannot spill (quantile states stay in memory)."""
    import yaml

    config = workdir / "config_big"
    shutil.rmtree(config, ignore_errors=True)
    for part in ("mappings", "reference"):
        shutil.copytree(ROOT / "sources" / part, config / part)
    limits_file = config / "reference" / "warehouse.yaml"
    limits = yaml.safe_load(limits_file.read_text(encoding="utf-8"))
    limits["memory_limit"] = memory_limit
    limits_file.write_text(yaml.safe_dump(limits, sort_keys=False), encoding="utf-8")
    return config


def _run_pipeline(workdir: Path, inbox: Path, label: str, config: Path | None = None) -> float:
    from pipelines.runner import failure_messages, launch

    _use_home(workdir / f"home_{label}", inbox, config)
    started = time.perf_counter()
    result = launch(FIRST, LAST)
    elapsed = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"pipeline run failed: {failure_messages(result)}")
    return elapsed


HAND_QUERY = """
with cases as (
    select
        "部门编码" as department_id,
        "办理渠道" as channel,
        strptime("受理时间", '%Y-%m-%d %H:%M:%S') as received_at,
        try_strptime(nullif("办结时间", ''), '%Y-%m-%d %H:%M:%S') as completed_at,
        "承诺时限"::int as time_limit_days,
        "应交材料数"::int as materials_required,
        "实交材料数"::int as materials_submitted,
        case "评价等级" when '非常满意' then 5 when '满意' then 4 when '基本满意' then 3
                        when '不满意' then 2 when '非常不满意' then 1 end as rating,
        "是否整改" = '是' as rectified,
        try_strptime(nullif("整改时间", ''), '%Y-%m-%d %H:%M:%S') as rectified_at,
        "申诉结果" = '申诉成立' as appeal_upheld
    from read_csv($files, all_varchar = true, header = true)
),
days as (
    select d::date as day,
           coalesce(e.working, isodow(d) <= 5) as working
    from range(date '2024-01-01', date '2027-12-31', interval 1 day) t(d)
    left join exceptions e on e.day = d::date
),
calendar as (
    select day, sum(working::int) over (order by day) as n from days
),
timed as (
    select c.*, date_trunc('month', completed_at)::date as period,
           r.n + c.time_limit_days as due_n, f.n as done_n, x.n - f.n as rect_n,
           rating <= 2 and not coalesce(appeal_upheld, false) as bad,
           rating is not null and not (rating <= 2 and coalesce(appeal_upheld, false)) as rated
    from cases c
    join calendar r on r.day = c.received_at::date
    left join calendar f on f.day = c.completed_at::date
    left join calendar x on x.day = c.rectified_at::date
)
select department_id, period,
       count(*) as n_completed,
       100.0 * count(*) filter (where done_n <= due_n) / count(*) as on_time_completed,
       median(epoch(completed_at - received_at) / 3600.0) as median_hours,
       100.0 * count(*) filter (where rated and rating >= 3) / nullif(count(*) filter (where rated), 0) as good_review_rate,
       100.0 * count(*) filter (where bad and rectified and rect_n <= 15) / nullif(count(*) filter (where bad), 0)
           as rectification_rate
from timed
where completed_at is not null
group by all
"""


def _hand_query(inbox: Path, scratch: Path) -> tuple[float, duckdb.DuckDBPyConnection]:
    from pipelines.reference import load_holidays

    started = time.perf_counter()
    utf8_files = []
    for path in sorted((inbox / "service_transactions").glob("*.csv")):
        target = scratch / path.name
        decoder = codecs.getincrementaldecoder("gb18030")()
        with path.open("rb") as src, target.open("w", encoding="utf-8") as dst:
            while chunk := src.read(1 << 24):
                dst.write(decoder.decode(chunk))
        utf8_files.append(str(target))
    con = duckdb.connect()
    exceptions = [(d, w) for d, w in load_holidays(ROOT / "sources/reference").days()]
    con.execute("create table exceptions (day date, working boolean)")
    con.executemany("insert into exceptions values (?, ?)", exceptions)
    con.execute(f"create table hand as {HAND_QUERY}", {"files": utf8_files})
    return time.perf_counter() - started, con


def _compare_with_marts(con: duckdb.DuckDBPyConnection, warehouse: Path) -> float:
    """Largest absolute difference between the query and the marts, on shared figures."""
    con.execute(f"attach '{warehouse}' as wh (read_only)")
    row = con.sql(
        """
        select max(abs(h.median_hours - v.raw_value)) filter (where v.indicator_id = 'median_processing_hours'),
               max(abs(h.good_review_rate - v.raw_value)) filter (where v.indicator_id = 'good_review_rate'),
               count(*)
        from hand h
        join wh.marts.fct_indicator_values v on v.department_id = h.department_id and v.period = h.period
             and v.period_type = 'month'
        where v.indicator_id in ('median_processing_hours', 'good_review_rate')
        """
    ).fetchall()[0]
    return max(x or 0 for x in row[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--memory-limit",
        default="3GB",
        help="DuckDB's memory limit for the big run (warehouse.yaml; the sample's own is 1GB) [3GB]",
    )
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="govperf-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        tiny_inbox, big_inbox = workdir / "inbox_tiny", workdir / "inbox"
        print(f"generating {args.transactions:,} transactions ({FIRST}..{LAST}) in {big_inbox}", flush=True)
        generated = _generate(big_inbox, args.transactions)
        _generate(tiny_inbox, 30_000)
        size_gb = sum(p.stat().st_size for p in big_inbox.rglob("*") if p.is_file()) / 1e9
        print(f"  generated in {generated:.1f} s, {size_gb:.2f} GB of extracts", flush=True)

        # The first run in a process pays one-off imports (GX, pandas, dbt); a
        # warm-up run keeps them out of both measured figures.
        _run_pipeline(workdir, tiny_inbox, "warmup")
        fixed = _run_pipeline(workdir, tiny_inbox, "tiny")
        print(f"pipeline on the tiny city (start-up cost): {fixed:.1f} s", flush=True)
        big_config = _config_with_memory_limit(workdir, args.memory_limit)
        pipeline = _run_pipeline(workdir, big_inbox, "big", big_config)
        print(f"pipeline on {args.transactions:,} transactions: {pipeline:.1f} s", flush=True)
        own_rss, child_rss = _peak_rss_mb()

        scratch = workdir / "hand"
        scratch.mkdir(exist_ok=True)
        query, con = _hand_query(big_inbox, scratch)
        difference = _compare_with_marts(con, workdir / "home_big" / "warehouse" / "govperf.duckdb")

        print()
        print(f"transactions                 {args.transactions:>12,}")
        print(f"hand-written DuckDB query    {query:>10.1f} s  (incl. GBK decoding)")
        print(f"whole pipeline               {pipeline:>10.1f} s  (DuckDB memory_limit {args.memory_limit})")
        print(f"ratio pipeline / query       {pipeline / query:>10.2f} x")
        print(f"fixed start-up (tiny city)   {fixed:>10.1f} s")
        print(f"(pipeline - start-up) / query{(pipeline - fixed) / query:>10.2f} x   target <= 2")
        print(f"peak RSS: this process {own_rss:,.0f} MB, largest child (dbt) {child_rss:,.0f} MB")
        print(f"max |query - marts| on median hours and good-review rate: {difference:.2e}")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
