"""Approval and publication (审核签发): drafts, published revisions, manifests and
the archive index, on the bulletin tests' hand-made marts."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.ledger import SignedTreeHead
from pipelines.publish.bulletin import render_monthly_bulletin
from pipelines.publish.config import Edition, editions_of, load_bulletin_config
from pipelines.publish.editions import PublicationRefused, PublishedRevision, approve, mart_hashes
from pipelines.settings import settings
from tests.conftest import SHARED_CACHE, drafted_on, record_as_built
from tests.test_bulletin_render import MARCH, _build_marts

EDITION = Edition.month(MARCH)

WHEN = dt.datetime(2024, 4, 8, 10, 30)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hand-made marts, recorded in the ledger of a home of their own as if dbt built them."""
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    path = tmp_path / "warehouse.duckdb"
    _build_marts(path)
    record_as_built(path, settings().home)
    return path


def _publish(warehouse: Path, published: Path, **kwargs) -> PublishedRevision:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return approve(
            con, kwargs.pop("edition", EDITION), published, kwargs.pop("by", "张三"), kwargs.pop("at", WHEN), **kwargs
        )
    finally:
        con.close()


def _approve(warehouse: Path, published: Path, **kwargs) -> Path:
    """The published edition's HTML."""
    return _publish(warehouse, published, **kwargs).html


def test_a_draft_is_marked_and_the_published_edition_shows_its_approval(warehouse, tmp_path):
    con = duckdb.connect(str(warehouse), read_only=True)
    draft = render_monthly_bulletin(con, MARCH, tmp_path / "draft").read_text(encoding="utf-8")
    con.close()
    assert "草稿 · 未经审核签发" in draft and 'class="watermark"' in draft
    edition = _approve(warehouse, tmp_path / "published")
    html = edition.read_text(encoding="utf-8")
    assert edition == tmp_path / "published" / "monthly" / "2024-03" / "r1" / "bulletin_2024-03.html"
    assert "草稿" not in html and "审核签发：张三 · 2024-04-08 10:30 · 第 1 版" in html
    manifest = json.loads((edition.parent / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["approved_by"] == "张三" and manifest["catalogue_version"] == "v1"
    con = duckdb.connect(str(warehouse), read_only=True)
    assert manifest["mart_hashes"] == mart_hashes(con, EDITION, load_bulletin_config(settings().reference_dir))
    assert set(manifest["files_sha256"]) == {"bulletin_2024-03.html", "bulletin_2024-03.pdf"} | {
        f"bulletin_2024-03_departments/D0{n}.html" for n in range(1, 7)
    }
    con.close()


def test_unchanged_data_is_not_published_twice_and_a_change_makes_a_revision(warehouse, tmp_path):
    published = tmp_path / "published"
    first = _approve(warehouse, published)
    first_bytes = first.read_bytes()
    with pytest.raises(PublicationRefused, match="nothing changed"):
        _approve(warehouse, published)
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.fct_rankings set composite_score = composite_score + 1 where period = ?", [MARCH])
    con.close()
    record_as_built(warehouse, settings().home)  # as a dbt build of the changed data would
    with pytest.raises(PublicationRefused, match="--note"):
        _approve(warehouse, published)
    second = _approve(warehouse, published, by="李四", at=dt.datetime(2024, 4, 12, 9, 0), note="市民政局重报3月数据")
    assert second.parent.name == "r2" and first.read_bytes() == first_bytes  # the first is kept as it was
    manifest = json.loads((second.parent / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["changed_marts"] == ["fct_rankings"] and manifest["revision"] == 2
    assert "第 2 版（修订版：市民政局重报3月数据）" in second.read_text(encoding="utf-8")
    index = (published / "index.html").read_text(encoding="utf-8")
    assert index.count("<tr><td>") == 2 and 'href="monthly/2024-03/r2/bulletin_2024-03.html"' in index


def test_same_marts_and_approval_give_the_same_bytes(warehouse, tmp_path):
    a = _approve(warehouse, tmp_path / "a").read_bytes()
    b = _approve(warehouse, tmp_path / "b").read_bytes()
    assert a == b


def test_an_approval_comment_is_escaped(warehouse, tmp_path):
    published = tmp_path / "published"
    _approve(warehouse, published, by="<script>alert(1)</script>")
    assert "<script>alert(1)" not in (published / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in next(published.glob("monthly/*/r1/*.html")).read_text(encoding="utf-8")


@pytest.mark.slow  # two Dagster runs, after loading the code location (about 20 s)
def test_the_cli_publishes_and_refuses_a_month_whose_gate_is_closed(warehouse, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipelines.checks import gate
    from pipelines.checks.gate import CheckOutcome
    from pipelines.cli import main
    from pipelines.settings import settings

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster_home"))
    monkeypatch.setenv("GOVPERF_CACHE", str(SHARED_CACHE))  # dbt's parse, shared with the session's homes
    monkeypatch.setenv("GOVPERF_DUCKDB", str(warehouse))
    runner = CliRunner()
    drafted_on(tmp_path / "home", "2024-03-25 09:00", "2024-03")  # its appeal window closed before 2024-04-08
    done = runner.invoke(main, ["approve", "--period", "2024-03", "--by", "张三", "--at", "2024-04-08 10:30"])
    assert done.exit_code == 0, done.output
    manifest = json.loads((settings().published / "monthly" / "2024-03" / "r1" / "manifest.json").read_text())
    assert f"approval run: {manifest['run_id']} (revision 1)" in done.output  # the Dagster run that published it
    gate.record(
        settings().lake,
        "service_transactions",
        dt.date(2024, 2, 1),
        "ingest",
        [CheckOutcome("service_transactions", dt.date(2024, 2, 1), "ab", "rows_balanced", "error", False, "行丢失")],
    )
    refused = runner.invoke(main, ["approve", "--period", "2024-03", "--by", "张三", "--note", "x"])
    assert refused.exit_code != 0 and "rows_balanced" in refused.output


def test_a_quarter_without_quarterly_scores_is_refused(warehouse, tmp_path):
    with pytest.raises(PublicationRefused, match="2024-Q1: no ranking"):
        _approve(warehouse, tmp_path / "published", edition=Edition.parse("2024-Q1"))


def test_edition_keys():
    assert Edition.parse("2025-Q3") == Edition("quarter", dt.date(2025, 7, 1))
    assert Edition.parse("2025-Q3").label == "2025年第三季度"
    assert Edition.parse("2025-Q3").previous.key == "2025-Q2"
    assert Edition.parse("2025-01").previous.key == "2024-12"
    assert Edition.parse("2025-Q1").end == dt.date(2025, 3, 31)
    # 年度: the year as an edition, after its December and fourth quarter
    year = Edition.parse("2025")
    assert year == Edition("year", dt.date(2025, 1, 1)) and year.key == "2025" and year.folder == "annual"
    assert (year.label, year.months, year.last_month, year.end) == (
        "2025年度",
        12,
        dt.date(2025, 12, 1),
        dt.date(2025, 12, 31),
    )
    assert year.previous.key == "2024" and year.year_ago.key == "2024"
    assert [e.key for e in editions_of([dt.date(2025, 11, 1), dt.date(2025, 12, 1)])] == [
        "2025-11",
        "2025-12",
        "2025-Q4",
        "2025",
    ]
    assert year.holds_appeal("month", dt.date(2025, 7, 1)) and year.holds_appeal("year", dt.date(2025, 1, 1))
    assert not year.holds_appeal("quarter", dt.date(2025, 7, 1))
    for bad in ("2025-13", "2025-Q5", "2025/01", "Q1-2025", "25", "20251"):
        with pytest.raises(ValueError):
            Edition.parse(bad)
    with pytest.raises(ValueError):
        Edition("year", dt.date(2025, 2, 1))


def _modes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}


def test_a_published_revision_is_read_only_and_its_edition_folder_takes_the_next(warehouse, tmp_path):
    published = tmp_path / "published"
    first = _publish(warehouse, published)
    # CI runs as root, which writes through these bits anyway: the modes are the test.
    modes = _modes(first.folder)
    assert {
        name for name, mode in modes.items() if mode != (0o555 if (first.folder / name).is_dir() else 0o444)
    } == set()
    assert {"manifest.json", "bulletin_2024-03.html", "bulletin_2024-03_departments"} <= set(modes)
    assert (first.folder / "bulletin_2024-03_departments").stat().st_mode & 0o777 == 0o555
    for writable in (first.folder.parent, published / "index.html"):
        assert writable.stat().st_mode & 0o200, writable
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.fct_rankings set composite_score = composite_score + 1 where period = ?", [MARCH])
    con.close()
    record_as_built(warehouse, settings().home)
    second = _publish(warehouse, published, note="重报")
    assert second.revision == 2 and _modes(second.folder)["manifest.json"] == 0o444
    assert _modes(first.folder) == modes


def test_approve_says_what_it_published(warehouse, tmp_path):
    import hashlib

    result = _publish(warehouse, tmp_path / "published")
    assert (result.revision, result.approved_by, result.folder) == (1, "张三", result.html.parent)
    manifest = result.folder / "manifest.json"
    assert result.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert result.files == len(json.loads(manifest.read_text())["files_sha256"]) == 8  # HTML, PDF, 6 department pages
    assert result.run_id is None
    # The signed head that includes the approval, as the approval run's metadata shows it.
    assert SignedTreeHead.from_dict(result.checkpoint).verify() and result.checkpoint["tree_size"] >= 2


def test_the_run_that_drew_a_revision_is_in_its_manifest_and_footer_and_a_draft_names_none(warehouse, tmp_path):
    run_id = "7d1f0c2e-0000-4000-8000-000000000001"
    result = _publish(warehouse, tmp_path / "published", run_id=run_id)
    assert json.loads((result.folder / "manifest.json").read_text())["run_id"] == run_id
    pages = [result.html, *sorted((result.folder / "bulletin_2024-03_departments").glob("*.html"))]
    for page in pages:
        footer = page.read_text(encoding="utf-8").split("<footer>")[1]
        assert f'签发运行编号：<code translate="no">{run_id}</code>' in footer, page
    # Outside a run (and in drafts) there is no run id to show.
    plain = _publish(warehouse, tmp_path / "plain")
    assert "run_id" not in json.loads((plain.folder / "manifest.json").read_text())
    assert "签发运行编号" not in plain.html.read_text(encoding="utf-8")
    con = duckdb.connect(str(warehouse), read_only=True)
    draft = render_monthly_bulletin(con, MARCH, tmp_path / "draft").read_text(encoding="utf-8")
    con.close()
    assert "签发运行编号" not in draft and run_id not in draft


def _index_rows(published: Path) -> list[tuple[str, str, str]]:
    """(period link, revision, status) of each row of the archive index."""
    index = (published / "index.html").read_text(encoding="utf-8")
    return re.findall(r'<tr><td><a href="([^"]+)">.*?<td>(第 \d+ 版)</td>\s*<td class="\w+">([^<]+)</td>', index, re.S)


def test_the_archive_index_marks_the_current_revision_and_what_superseded_each_other(warehouse, tmp_path):
    published = tmp_path / "published"
    _publish(warehouse, published)
    _publish(warehouse, published, edition=Edition.parse("2024-02"))
    for n, note in enumerate(["重报一", "重报二"]):
        con = duckdb.connect(str(warehouse))
        con.execute("update marts.fct_rankings set composite_score = composite_score + 1 where period = ?", [MARCH])
        con.close()
        record_as_built(warehouse, settings().home)
        _publish(warehouse, published, note=note, at=WHEN + dt.timedelta(days=n + 1))
    assert _index_rows(published) == [
        ("monthly/2024-03/r3/bulletin_2024-03.html", "第 3 版", "现行"),
        ("monthly/2024-03/r2/bulletin_2024-03.html", "第 2 版", "已被第 3 版取代"),
        ("monthly/2024-03/r1/bulletin_2024-03.html", "第 1 版", "已被第 2 版取代"),
        ("monthly/2024-02/r1/bulletin_2024-02.html", "第 1 版", "现行"),
    ]
    assert "<th>状态</th>" in (published / "index.html").read_text(encoding="utf-8")


def test_approvals_are_their_own_job_on_an_asset_partitioned_by_edition():
    import dagster as dg

    from pipelines.definitions import defs

    key = dg.AssetKey(["publish", "published_editions"])
    node = defs.resolve_asset_graph().get(key)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition) and node.partitions_def.name == "editions"
    assert node.group_name == "publish" and dg.AssetKey(["marts", "fct_rankings"]) in node.parent_keys
    assert defs.resolve_job_def("approval_job").asset_layer.selected_asset_keys == {key}
    for job in ("full_pipeline_job", "monthly_scoring_and_bulletin_job", "ingest_job"):
        assert key not in defs.resolve_job_def(job).asset_layer.selected_asset_keys, job


def test_every_mart_an_edition_reads_is_in_what_its_approval_hashes() -> None:
    """A mart the bulletin reads but the approval does not hash would let its rows
    change under a published revision unnoticed (fct_indicator_reference and
    fct_indicator_treatment, read by the department pages, once were)."""
    from pipelines.publish.editions import EDITION_MARTS

    readers = Path(__file__).resolve().parents[1] / "pipelines" / "publish"
    read = set()
    for module in ("edition_rows", "edition_context", "findings", "move_reasons", "derivation", "official_form"):
        read |= set(re.findall(r"\bmarts\.([a-z_]+)", (readers / f"{module}.py").read_text(encoding="utf-8")))
    assert read and read <= set(EDITION_MARTS), sorted(read - set(EDITION_MARTS))
