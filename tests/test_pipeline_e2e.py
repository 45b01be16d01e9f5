"""End to end through Dagster: extract files → Parquet → dbt → marts → bulletin.

These run the real job on a persistent Dagster instance, real dbt and a real
DuckDB file, on a small generated city.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.runner import failure_messages, launch
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import FIRST_MONTH, LAST_MONTH, MART_TABLES, MONTHS, edition_hashes, export_marts, use_home


def _bulletin_hashes() -> dict[str, str]:
    return edition_hashes(settings().bulletins)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, small_city: Path):
    """One full run over the small city, shared by the tests that only read it."""
    home = tmp_path_factory.mktemp("full_run") / "home"
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home, small_city)
        result = launch(FIRST_MONTH, LAST_MONTH)
        assert result.success, failure_messages(result)
        yield {
            "result": result,
            "home": home,
            "duckdb": settings().duckdb_path,
            "marts": export_marts(settings().duckdb_path),
            "bulletins": _bulletin_hashes(),
            "bulletin_dir": settings().bulletins / "monthly",
        }


def test_full_run_writes_every_contract_table(full_run):
    con = duckdb.connect(str(full_run["duckdb"]), read_only=True)
    tables = {
        r[0]
        for r in con.sql("select table_name from information_schema.tables where table_schema = 'marts'").fetchall()
    }
    assert set(MART_TABLES) <= tables
    for table in MART_TABLES:
        assert con.sql(f"select count(*) from marts.{table}").fetchall()[0][0] > 0, table
    # Every department with any scored indicator in a month is ranked that month.
    unranked = con.sql(
        """
        select v.period, v.department_id from marts.fct_indicator_values v
        left join marts.fct_rankings r using (period, period_type, department_id)
        where v.score is not null and r.department_id is null
        """
    ).fetchall()
    assert unranked == []
    ranked_per_month = dict(
        con.sql(
            "select strftime(period, '%Y-%m'), count(*) from marts.fct_rankings where period_type = 'month' group by 1"
        ).fetchall()
    )
    assert sorted(ranked_per_month) == MONTHS
    assert min(ranked_per_month.values()) >= 60
    # The merged department is ranked up to its last month and not after.
    merged = con.sql(
        "select department_id, valid_to from marts.dim_department where merged_into is not null"
    ).fetchall()
    assert merged, "the sample city has a merger"
    for department_id, valid_to in merged:
        after = con.sql(
            f"select count(*) from marts.fct_rankings where department_id = '{department_id}' and period > '{valid_to}'"
        ).fetchall()[0][0]
        assert after == 0
    # Rows read = accepted + quarantined, for every file.
    unbalanced = con.sql(
        "select file_name from marts.fct_data_quality where rows_read <> rows_accepted + rows_quarantined"
    ).fetchall()
    assert unbalanced == []
    # Ranks: on the score rounded to 2 decimals, ties at the minimum rank. (The
    # rank uses the full-precision score; a stored 4-decimal score ending in 50
    # could round either way, so such periods are left out.)
    bad_ranks = con.sql(
        """
        select count(*) from (
            select rank, composite_score,
                   rank() over (partition by period, period_type order by round(composite_score, 2) desc) as expected,
                   bool_or(round(composite_score * 10000) % 100 = 50) over (partition by period, period_type) as edge
            from marts.fct_rankings) where rank <> expected and not edge
        """
    ).fetchall()[0][0]
    assert bad_ranks == 0
    con.close()
    # Each month's edition, and the quarter's (its last month is in the run), and their exports.
    # Each in its own folder, with its export beside it.
    editions = [f"monthly/{m}/bulletin_{m}.html" for m in MONTHS] + ["quarterly/2025-Q3/bulletin_2025-Q3.html"]
    exports = [f"monthly/{m}/绩效排名_{m}.xlsx" for m in MONTHS] + ["quarterly/2025-Q3/绩效排名_2025-Q3.xlsx"]
    # and each draft's internal annex of the rating-gaming screens' flags
    annexes = [f"monthly/{m}/internal/疑点核查.html" for m in MONTHS] + ["quarterly/2025-Q3/internal/疑点核查.html"]
    assert sorted(k for k in full_run["bulletins"] if "_departments/" not in k) == sorted(editions + exports + annexes)
    # A page per ranked department beside each edition.
    con = duckdb.connect(str(full_run["duckdb"]), read_only=True)
    ranked = dict(con.sql("select period_type || period, count(*) from marts.fct_rankings group by all").fetchall())
    con.close()
    pages = [k for k in full_run["bulletins"] if k.startswith("quarterly/2025-Q3/bulletin_2025-Q3_departments/")]
    assert len(pages) == ranked["quarter2025-07-01"] > 0


def test_every_landed_comment_is_scored_and_counted_once(full_run):
    """The analytics step scores every comment the lake holds; staging carries the score;
    the mart counts each comment once (a survey response's once, whatever its questions)."""
    con = duckdb.connect(str(full_run["duckdb"]), read_only=True)
    try:
        unscored = con.sql(
            """
            select 'transactions', count(*) from staging.stg_lake__service_transactions as t
            left join staging.stg_lake__comment_sentiment as c
                on c.source = 'service_transactions' and c.file_hash = t.file_hash and c.source_line = t.source_line
            where t.has_comment and c.negative_p is null
            union all
            select 'surveys', count(*) from staging.stg_lake__survey_responses as r
            left join staging.stg_lake__comment_sentiment as c
                on c.source = 'survey_responses' and c.file_hash = r.file_hash and c.source_line = r.source_line
            where r.has_comment and c.negative_p is null
            """
        ).fetchall()
        assert unscored == [("transactions", 0), ("surveys", 0)]
        assert con.sql(
            "select min(negative_p) >= 0 and max(negative_p) <= 1 and bool_and(round(negative_p, 4) = negative_p) "
            "and count(*) = count(distinct (source, file_hash, source_line)) "
            "from staging.stg_lake__comment_sentiment"
        ).fetchall()[0][0]
        # The mart, month by month, against the responses with a comment in staging.
        counted = con.sql(
            """
            select m.period, m.department_id, m.n_scored, s.responses
            from marts.fct_comment_sentiment as m
            full join (
                select response_month as period, department_id, count(distinct response_id) as responses
                from staging.stg_lake__survey_responses where has_comment group by all
            ) as s using (period, department_id)
            where coalesce(m.source, 'survey_responses') = 'survey_responses'
              and coalesce(m.period_type, 'month') = 'month'
              and m.n_scored is distinct from s.responses
            """
        ).fetchall()
        assert counted == []
        shares = con.sql(
            "select source, sum(n_scored), sum(n_negative) from marts.fct_comment_sentiment "
            "where period_type = 'month' group by all order by all"
        ).fetchall()
        assert [source for source, *_ in shares] == ["hotline_complaints", "service_transactions", "survey_responses"]
        assert all(0 < negative < scored for _source, scored, negative in shares)
    finally:
        con.close()
    score_files = sorted((full_run["home"] / "lake" / "comment_sentiment").glob("*/*.parquet"))
    assert {p.parent.name for p in score_files} == {
        "service_transactions",
        "survey_responses",
        "hotline_complaints",
        "_schema",
    }
    page = (full_run["bulletin_dir"] / "2025-09" / "bulletin_2025-09.html").read_text(encoding="utf-8")
    assert 'id="comment-sentiment"' in page and "办件评价留言" in page


def test_run_history_survives_a_restart(full_run):
    """A new instance on the same DAGSTER_HOME (as after a restart) sees the run."""
    instance = dg.DagsterInstance.from_config(str(full_run["home"] / "dagster_home"))
    try:
        run = instance.get_run_by_id(full_run["result"].run_id)
        assert run is not None and run.is_success
        assert instance.get_latest_materialization_event(dg.AssetKey(["publish", "bulletins"])) is not None
    finally:
        instance.dispose()


def test_rerun_on_the_same_inputs_is_byte_identical(full_run, govperf_home, monkeypatch, tmp_path):
    """Same inputs in a fresh home: the same marts rows, bulletin and export bytes."""
    monkeypatch.setenv("GOVPERF_CACHE", str(tmp_path / "cache"))  # every chart drawn again
    result = launch(FIRST_MONTH, LAST_MONTH)
    assert result.success, failure_messages(result)
    assert export_marts(settings().duckdb_path) == full_run["marts"]
    assert _bulletin_hashes() == full_run["bulletins"]


def test_failed_gate_stops_the_bulletin_and_later_scoring(govperf_home: Path, small_city: Path):
    inbox = Path(os.environ["GOVPERF_INBOX"])
    month = "2025-08"
    target = next((inbox / "service_transactions").glob(f"*{month.replace('-', '')}.csv"))
    # Plant bad data: a fifth of the ratings become an unknown level.
    lines = target.read_bytes().decode("gbk").splitlines(keepends=True)
    for i in range(1, len(lines), 5):
        lines[i] = lines[i].replace(",满意,", ",很不好,", 1).replace(",非常满意,", ",很不好,", 1)
    target.write_bytes("".join(lines).encode("gbk"))

    result = launch(month)
    assert not result.success
    messages = failure_messages(result)
    assert any("quarantine_within_limit" in m for m in messages), messages
    assert not (settings().bulletins / "monthly" / month / f"bulletin_{month}.html").exists()

    # A later scoring-and-bulletin run for the month refuses, and says why.
    later = launch(month, job="scoring")
    assert not later.success
    reasons = " ".join(failure_messages(later))
    assert "Scoring refused" in reasons and "quarantine_within_limit" in reasons
    assert not (settings().bulletins / "monthly" / month / f"bulletin_{month}.html").exists()

    # Once the clean file is resubmitted and ingested, the month is scored and published again.
    shutil.copy(small_city / target.relative_to(inbox), target)
    assert launch(month, job="ingest").success
    rescored = launch(month, job="scoring")
    assert rescored.success, failure_messages(rescored)
    assert (settings().bulletins / "monthly" / month / f"bulletin_{month}.html").exists()


def test_reloading_the_same_files_changes_nothing(govperf_home: Path):
    assert launch(FIRST_MONTH, job="ingest").success
    lake = settings().lake
    before = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "reference" not in p.parts}
    assert launch(FIRST_MONTH, job="ingest").success
    after = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "reference" not in p.parts}
    assert before == after
    archived = list(settings().archive.rglob("*.*"))
    assert len(archived) == len({p.name for p in archived})


def test_rank_bands_come_from_the_monte_carlo(full_run):
    """With the sample catalogue's perturbation the bands are real: ordered, around
    the median rank, and wide for some departments."""
    con = duckdb.connect(str(full_run["duckdb"]), read_only=True)
    rows = con.sql(
        "select rank, rank_median, rank_p05, rank_p95, clearly_ahead_of, n_ranked from marts.fct_rankings"
    ).fetchall()
    assert rows and all(p05 <= median <= p95 for _, median, p05, p95, _, _ in rows)
    assert any(p95 - p05 >= 2 for _, _, p05, p95, _, _ in rows)
    assert all(0 <= ahead < n for _, _, _, _, ahead, n in rows)


def test_monte_carlo_without_perturbation_reproduces_the_published_ranks(full_run, tmp_path):
    """The Monte Carlo scores every draw with the same dbt macros as the published
    ranking; with no perturbation and the catalogue's own methods, every draw must
    give exactly the published rank."""
    import yaml

    from pipelines.parquet import write_table
    from pipelines.reference import reference_tables
    from pipelines.transform.project import dbt_executable

    lake, db = tmp_path / "lake", tmp_path / "warehouse.duckdb"
    shutil.copytree(full_run["home"] / "lake", lake)
    shutil.copy(full_run["duckdb"], db)
    reference = tmp_path / "reference"
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", reference)
    catalogue = yaml.safe_load((reference / "catalogue.yaml").read_text(encoding="utf-8"))
    for version in catalogue["versions"]:
        version["robustness"] = {
            "draws": 40,
            "weight_perturbation": 0,
            "normalisations": ["catalogue"],
            "aggregations": ["catalogue"],
        }
    (reference / "catalogue.yaml").write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    write_table(reference_tables(reference)["robustness_draws"], lake / "reference" / "robustness_draws.parquet")

    dbt_vars = f'{{"period_start": "{FIRST_MONTH}-01", "period_end": "{LAST_MONTH}-01", "lookback_months": 1}}'
    subprocess.run(
        # the staging view too: views in the copied warehouse still name the old lake
        [
            dbt_executable(),
            "build",
            "--select",
            "stg_reference__robustness_draws",
            "int_rank_robustness__scenarios",
            "int_rank_robustness__draws",
            "int_rank_robustness",
            "fct_rankings",
            "--vars",
            dbt_vars,
            "--exclude",
            "test_type:unit",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT / "dbt_project",
        check=True,
        capture_output=True,
        env=os.environ | {"GOVPERF_LAKE": str(lake), "GOVPERF_DUCKDB": str(db)},
    )
    con = duckdb.connect(str(db), read_only=True)
    rows = con.sql(
        "select period, period_type, department_id, rank, rank_median, rank_p05, rank_p95 from marts.fct_rankings"
    ).fetchall()
    assert len(rows) >= 4 * 60  # three months and their quarter
    differing = [r for r in rows if not (r[3] == r[4] == r[5] == r[6])]
    assert differing == []
    published = {
        (p, t, d): r
        for p, t, d, r in duckdb.connect(str(full_run["duckdb"]), read_only=True)
        .sql("select period, period_type, department_id, rank from marts.fct_rankings")
        .fetchall()
    }
    assert {(p, t, d): r for p, t, d, r, *_ in rows} == published


def test_monte_carlo_in_many_batches_equals_one_batch(full_run, tmp_path):
    """The Monte Carlo is built a batch of scenarios at a time, and its bands a batch of
    periods at a time (bounded memory): tiny batches must give exactly the ranks and
    bands of one batch holding everything."""
    from pipelines.transform.project import dbt_executable

    lake, db = tmp_path / "lake", tmp_path / "warehouse.duckdb"
    shutil.copytree(full_run["home"] / "lake", lake)
    shutil.copy(full_run["duckdb"], db)
    models = [
        "int_rank_robustness__scenarios",
        "int_rank_robustness__draws",
        "int_rank_robustness__periods",
        "int_rank_robustness",
    ]
    built = {}
    for batch_rows in (10_000, 100_000_000):
        subprocess.run(
            [dbt_executable(), "run", "--select", *models, "--target-path", str(tmp_path / "target")]
            + ["--log-path", str(tmp_path)],
            cwd=PROJECT_ROOT / "dbt_project",
            check=True,
            capture_output=True,
            env=os.environ
            | {"GOVPERF_LAKE": str(lake), "GOVPERF_DUCKDB": str(db), "GOVPERF_MONTE_CARLO_BATCH_ROWS": str(batch_rows)},
        )
        with duckdb.connect(str(db), read_only=True) as con:
            batches = con.execute(
                "select (select max(batch) from intermediate.int_rank_robustness__scenarios), "
                "(select max(batch) from intermediate.int_rank_robustness__periods)"
            ).fetchall()[0]
            built[batches] = con.sql("select * from intermediate.int_rank_robustness order by all").fetchall()
    one_batch, many_batches = sorted(built)
    assert one_batch == (1, 1) and many_batches[0] > 10 and many_batches[1] > 1
    one, many = built[one_batch], built[many_batches]
    assert len(one) >= 4 * 60 and one == many


def test_a_build_out_of_duckdb_memory_says_which_setting_to_raise(small_city, tmp_path, monkeypatch):
    """DuckDB's memory limit is configuration: a run whose work outgrows it fails (here
    the first step that queries, ingest), and its message names the file to change."""
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "sources", config, ignore=shutil.ignore_patterns("sample"))
    (config / "reference" / "warehouse.yaml").write_text("memory_limit: 16MB\n", encoding="utf-8")
    use_home(monkeypatch, tmp_path / "home", small_city)
    monkeypatch.setenv("GOVPERF_CONFIG", str(config))
    result = launch(FIRST_MONTH, FIRST_MONTH)
    assert not result.success
    said = " ".join(failure_messages(result))
    advice = (
        f"DuckDB ran out of its memory limit (16MB): raise memory_limit in {config / 'reference' / 'warehouse.yaml'}"
    )
    assert advice in said


def test_score_changes_add_up_and_the_bulletin_says_why_the_movers_moved(full_run, tmp_path):
    """排名变动原因 on the sample city: every change of every department's composite
    against the previous period is split into terms that add up to it (0.01), and the
    edition's movers section and the department pages say why, from those terms."""
    from pipelines.publish.bulletin import collect_edition, write_edition
    from pipelines.publish.config import Edition, load_bulletin_config
    from pipelines.publish.wording import page_name
    from tests.test_score_changes import assert_score_changes_add_up

    checked = assert_score_changes_add_up(full_run["duckdb"], {"previous"})  # no year back in 3 months
    assert checked["previous"] >= 2 * 60  # August and September, each against the month before
    con = duckdb.connect(str(full_run["duckdb"]), read_only=True)
    try:
        context = collect_edition(con, Edition.parse(LAST_MONTH), load_bulletin_config(settings().reference_dir))
    finally:
        con.close()
    up, down = context["move_reasons"]["up"], context["move_reasons"]["down"]
    assert [r["department_id"] for r in up] == [r["department_id"] for r in context["improvers"]]
    assert [r["department_id"] for r in down] == [r["department_id"] for r in context["decliners"]]
    assert up and down
    for r in up + down:
        moved = f"{'上升' if r['rank_change'] > 0 else '下降'} {abs(r['rank_change'])} 位，"
        assert r["sentence"].startswith(r["department_name"] + moved), r["sentence"]
        assert 1 <= len(r["reasons"]) <= 3 and "贡献" in r["sentence"]
    edition_html = write_edition(context, tmp_path).read_text(encoding="utf-8")
    section = edition_html.split('id="move-reasons"')[1].split("</div>")[0]
    assert all(r["explanation"] in section for r in up + down)
    first = (up + down)[0]
    page = (tmp_path / context["department_pages"] / f"{page_name(first['department_id'])}.html").read_text(
        encoding="utf-8"
    )
    block = page.split('id="score-derivations"')[1].split("</section>")[0]  # the raw value → score block
    assert 'id="score-changes"' in block and 'id="score-change-previous"' in block
    assert first["sentence"] in block and "合计（= 综合得分变化）" in block
    # What a reader sees is Chinese: no Latin word but the configured names (P90).
    names = {m["indicator_name"] for m in context["indicators"]} | {r["department_name"] for r in context["rankings"]}
    for html_text in (section, block.split('id="score-changes"')[1]):
        text = html.unescape(re.sub(r"<[^>]+>", " ", html_text.split(">", 1)[1]))
        for name in names:
            text = text.replace(name, " ")
        assert not re.findall(r"[A-Za-z]+", text), re.findall(r"[A-Za-z]+", text)
