"""Approval and publication (审核签发): drafts, published revisions, manifests and
the archive index, on the bulletin tests' hand-made marts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.bulletin import render_monthly_bulletin
from pipelines.publish.config import Edition, load_bulletin_config
from pipelines.publish.editions import PublicationRefused, approve, mart_hashes
from pipelines.settings import settings
from tests.conftest import record_as_built
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


def _approve(warehouse: Path, published: Path, **kwargs) -> Path:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return approve(
            con, kwargs.pop("edition", EDITION), published, kwargs.pop("by", "张三"), kwargs.pop("at", WHEN), **kwargs
        )
    finally:
        con.close()


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
    assert set(manifest["files_sha256"]) == {"bulletin_2024-03.html"} | {
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


def test_the_cli_publishes_and_refuses_a_month_whose_gate_is_closed(warehouse, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipelines.checks import gate
    from pipelines.checks.gate import CheckOutcome
    from pipelines.cli import main
    from pipelines.settings import settings

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOVPERF_DUCKDB", str(warehouse))
    runner = CliRunner()
    done = runner.invoke(main, ["approve", "--period", "2024-03", "--by", "张三", "--at", "2024-04-08 10:30"])
    assert done.exit_code == 0, done.output
    assert (settings().published / "monthly" / "2024-03" / "r1" / "manifest.json").exists()
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
    for bad in ("2025-13", "2025-Q5", "2025/01", "Q1-2025"):
        with pytest.raises(ValueError):
            Edition.parse(bad)
