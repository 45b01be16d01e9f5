"""The published edition as a PDF, and its 文号 (document number).

What a reader of the PDF sees: A4 pages with the running header (title, 文号 and
version) and 第 N 页 / 共 M 页, fonts embedded, a text layer that gives the
ideographs (not the Kangxi or CJK radicals chromium's gives for 月 and 门), and the
approval record's hash, which manifest.json recomputes. The PDF is one of the
revision's hashed files, so `govperf verify` names it when it is altered.

Document numbers: one per edition, the next of the approval's year, kept by a
revision, never reused (not after a failed approval, not by racing processes).
Most tests use the bulletin tests' hand-made marts; the last runs the CLI on a tiny city.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader

from pipelines.publish.config import BulletinConfig, DocumentNumber, Edition
from pipelines.publish.document_numbers import REGISTER, allocate, allocated
from pipelines.publish.editions import PublicationRefused, PublishedRevision, approve
from pipelines.publish.pdf import approval_record_sha256
from pipelines.settings import PROJECT_ROOT, settings
from tests.conftest import SHARED_CACHE, drafted_on, only_dejavu_fonts, record_as_built
from tests.test_bulletin_render import FEBRUARY, MARCH, _build_marts

A4_POINTS = (595.28, 841.89)
RADICALS = re.compile(r"[\u2e80-\u2eff\u2f00-\u2fdf]")  # CJK Radicals Supplement, Kangxi Radicals
WHEN = dt.datetime(2024, 4, 8, 10, 30)
TITLE = "2024年3月政府部门绩效通报"


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hand-made marts, recorded in the ledger of a home of their own as if dbt built them."""
    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOVPERF_CACHE", str(SHARED_CACHE))
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("GOVPERF_DUCKDB", str(path))  # `govperf verify` compares these marts with the ledger
    _build_marts(path)
    record_as_built(path, settings().home)
    return path


def _publish(warehouse: Path, period=MARCH, at=WHEN, **kwargs) -> PublishedRevision:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return approve(con, Edition.month(period), settings().published, kwargs.pop("by", "张三"), at, **kwargs)
    finally:
        con.close()


def _change_march(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.fct_rankings set composite_score = composite_score + 1 where period = ?", [MARCH])
    con.close()
    record_as_built(warehouse, settings().home)  # as a dbt build of the changed data would


def _texts(pdf: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(str(pdf)).pages]


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _font_files(pdf: Path) -> dict[str, set[str]]:
    """Each font the pages use, by name, with the font-file keys of its descriptor."""
    fonts: dict[str, set[str]] = {}
    for page in PdfReader(str(pdf)).pages:
        for font in page["/Resources"].get("/Font", {}).values():
            font = font.get_object()
            described = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = described["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"])] = {key for key in descriptor if str(key).startswith("/FontFile")}
    return fonts


def _printed_record_hash(texts: list[str]) -> str:
    last = _squeezed(texts[-1])
    return re.search(r"签发记录哈希SHA-256([0-9a-f]{64})", last)[1]


def _verify() -> tuple[int, str]:
    from click.testing import CliRunner

    from pipelines.cli import main

    done = CliRunner().invoke(main, ["verify"])
    return done.exit_code, done.output


# ------------------------------------------------------------------ the PDF


def test_approve_prints_the_edition_to_an_a4_pdf_a_reader_can_search(warehouse):
    published = _publish(warehouse)
    assert published.pdf == published.folder / "bulletin_2024-03.pdf" and published.pdf.is_file()
    reader = PdfReader(str(published.pdf))
    assert len(reader.pages) == published.pdf_pages >= 2
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - A4_POINTS[0]) <= 1 and abs(height - A4_POINTS[1]) <= 1, (width, height)
    texts = _texts(published.pdf)
    n = len(texts)
    for number, text in enumerate(texts, start=1):
        page = _squeezed(text)
        assert f"第{number}页/共{n}页" in page, page[-80:]  # the page numbers
        assert "2024年3月政府部门绩效通报" in page and "绩效办〔2024〕1号·第1版" in page  # the running header
    whole = "".join(texts)
    # The right characters: the title, 月, and no radical standing in for an ideograph.
    assert TITLE in _squeezed(whole) and "月" in whole and "门" in whole
    assert RADICALS.findall(whole) == []
    # Every font embedded (a subset as a font file), the CJK faces among them.
    fonts = _font_files(published.pdf)
    assert fonts and all(files & {"/FontFile2", "/FontFile3"} for files in fonts.values()), fonts
    assert any("Noto-Serif-CJK-SC" in name for name in fonts) and any("Noto-Sans-CJK-SC" in name for name in fonts)
    assert PdfReader(str(published.pdf)).metadata.title == TITLE


def test_the_pdf_prints_the_approval_records_hash_which_the_manifest_recomputes(warehouse):
    published = _publish(warehouse)
    manifest = json.loads((published.folder / "manifest.json").read_text(encoding="utf-8"))
    printed = _printed_record_hash(_texts(published.pdf))
    assert printed == approval_record_sha256(manifest)
    # The record is the manifest without the files' hashes, canonical JSON (RFC 8785), by hand:
    import rfc8785

    record = {k: v for k, v in manifest.items() if k not in ("files_sha256", "edition_sha256")}
    assert printed == hashlib.sha256(rfc8785.dumps(record)).hexdigest()
    # Any field of the record changes it.
    assert approval_record_sha256(manifest | {"approved_by": "李四"}) != printed
    assert approval_record_sha256(manifest | {"files_sha256": {}}) == printed


def test_the_manifest_hashes_the_pdf_and_verify_names_it_when_altered(warehouse):
    published = _publish(warehouse)
    manifest = json.loads((published.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files_sha256"]["bulletin_2024-03.pdf"] == hashlib.sha256(published.pdf.read_bytes()).hexdigest()
    code, output = _verify()
    assert code == 0 and "核验通过" in output, output
    # One byte changed in the middle of the PDF, as a tamperer or a failing disk would.
    os.chmod(published.folder, 0o755)
    os.chmod(published.pdf, 0o644)
    data = bytearray(published.pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    published.pdf.write_bytes(bytes(data))
    code, output = _verify()
    assert code == 1 and "bulletin_2024-03.pdf: edited" in output, output


def test_with_departments_each_department_page_follows_on_a_page_of_its_own(warehouse):
    plain = _publish(warehouse)
    shutil_rmtree_published()
    with_pages = _publish(warehouse, with_departments=True)
    assert with_pages.pdf_pages > plain.pdf_pages
    # A page's text: its body, then the running header and the page number.
    texts = [_squeezed(t) for t in _texts(with_pages.pdf)]
    appendix = [i for i, t in enumerate(texts) if t.startswith("附件部门页面")]
    assert len(appendix) == 1
    names = {}
    for page in sorted((with_pages.folder / "bulletin_2024-03_departments").glob("*.html")):
        names[page.stem] = re.search(r"<h1>(.*?)</h1>", page.read_text(encoding="utf-8"))[1]
    assert len(names) == 6
    starts = {}
    for department, name in names.items():
        # Each department's page starts a page of the appendix: its approval line, the edition, its name.
        starts[department] = [
            i
            for i, t in enumerate(texts)
            if i >= appendix[0]
            and t.removeprefix("附件部门页面").startswith(f"审核签发：张三·2024-04-0810:30·第1版{TITLE}{name}")
        ]
        assert len(starts[department]) == 1, f"{department} {name} does not start a page"
    assert len({i for found in starts.values() for i in found}) == 6
    # Last, the approval record, with the hash of the record.
    assert _printed_record_hash(_texts(with_pages.pdf)) == approval_record_sha256(
        json.loads((with_pages.folder / "manifest.json").read_text(encoding="utf-8"))
    )


def shutil_rmtree_published() -> None:
    """Remove the archive (read-only folders), so the same edition can be approved afresh."""
    import shutil

    for root, folders, _files in os.walk(settings().published):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(settings().published)


def test_without_a_cjk_font_the_pdf_is_refused_not_printed_in_boxes(tmp_path):
    """With only DejaVu visible to fontconfig, no face has the edition's characters."""
    config = only_dejavu_fonts(tmp_path)
    page = tmp_path / "bulletin_2024-03.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body><h1>2024年3月政府部门绩效通报</h1></body></html>",
        encoding="utf-8",
    )
    child = """
        import sys
        from pathlib import Path
        from pipelines.publish.pdf import PdfNotWritten, write_pdf
        page = Path(sys.argv[1])
        try:
            write_pdf(page, page.with_suffix(".pdf"), {"revision": 1, "document_number": "绩效办〔2024〕1号"}, "t")
        except PdfNotWritten as error:
            print(error)
            sys.exit(3)
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(child), str(page)],
        env=os.environ | {"FONTCONFIG_FILE": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no CJK font" in done.stdout and "fonts-noto-cjk" in done.stdout
    assert not page.with_suffix(".pdf").exists()


# ------------------------------------------------------------------ 文号


def test_document_numbers_count_per_year_of_approval(warehouse):
    march = _publish(warehouse)
    february = _publish(warehouse, period=FEBRUARY, at=dt.datetime(2024, 4, 9, 9, 0))
    assert (march.document_number, february.document_number) == ("绩效办〔2024〕1号", "绩效办〔2024〕2号")
    manifest = json.loads((february.folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["document_number"], manifest["version_label"]) == ("绩效办〔2024〕2号", "第 1 版")
    # The number is in the ledger's approval entry too.
    from pipelines.ledger import events

    approvals = [e.body for e in events.ledger_of(settings().home).entries() if e.kind == "approval"]
    assert [a["document_number"] for a in approvals] == ["绩效办〔2024〕1号", "绩效办〔2024〕2号"]
    # A new year starts at 1; numbers already allocated are in the register, in order.
    config = DocumentNumber(prefix="绩效办")
    assert allocate(settings().published, config, Edition.month(MARCH), "王五", dt.datetime(2025, 1, 2, 8, 0)) == (
        "绩效办〔2025〕1号"
    )
    assert allocate(settings().published, config, Edition.month(MARCH), "王五", dt.datetime(2024, 12, 30, 8, 0)) == (
        "绩效办〔2024〕3号"
    )
    register = allocated(settings().published)
    assert [(e["year"], e["n"], e["period"]) for e in register] == [
        (2024, 1, "2024-03"),
        (2024, 2, "2024-02"),
        (2025, 1, "2024-03"),
        (2024, 3, "2024-03"),
    ]


def test_a_revision_keeps_its_editions_number_and_says_which_version_it_is(warehouse):
    first = _publish(warehouse)
    _change_march(warehouse)
    second = _publish(warehouse, at=dt.datetime(2025, 1, 3, 9, 0), note="市民政局重报3月数据")
    assert second.revision == 2 and second.document_number == first.document_number == "绩效办〔2024〕1号"
    manifest = json.loads((second.folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["document_number"], manifest["version_label"]) == ("绩效办〔2024〕1号", "第 2 版")
    assert "绩效办〔2024〕1号·第2版" in _squeezed(_texts(second.pdf)[0])
    assert len(allocated(settings().published)) == 1  # the revision took no number of its own
    code, output = _verify()
    assert code == 0, output


def test_a_number_is_never_reused_even_when_its_approval_fails(warehouse, monkeypatch):
    from pipelines.publish import editions

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(editions, "write_pdf", broken)
        with pytest.raises(OSError, match="disk full"):
            _publish(warehouse)
    assert not (settings().published / "monthly" / "2024-03" / "r1").exists()
    assert [e["number"] for e in allocated(settings().published)] == ["绩效办〔2024〕1号"]
    again = _publish(warehouse)
    assert again.revision == 1 and again.document_number == "绩效办〔2024〕2号"
    # A lost register does not bring a printed number back either.
    (settings().published / REGISTER).unlink()
    february = _publish(warehouse, period=FEBRUARY)
    assert february.document_number == "绩效办〔2024〕1号"  # 1 was allocated, never printed: the register is gone
    _change_march(warehouse)
    assert _publish(warehouse, note="重报").document_number == "绩效办〔2024〕2号"  # the revision keeps its own


def test_a_damaged_register_refuses_the_approval_rather_than_guess(warehouse):
    published = settings().published
    published.mkdir(parents=True)
    (published / REGISTER).write_text("not json\n", encoding="utf-8")
    with pytest.raises(PublicationRefused, match=f"{REGISTER}, line 1"):
        _publish(warehouse)
    # A torn last line (an allocation killed mid-write gave no number out) is dropped.
    (published / REGISTER).write_text(
        '{"year": 2024, "n": 1, "number": "绩效办〔2024〕1号"}\n{"year": 20', encoding="utf-8"
    )
    assert _publish(warehouse).document_number == "绩效办〔2024〕2号"
    assert (published / REGISTER).read_text(encoding="utf-8").count("\n") == 2


ALLOCATOR = """
    import datetime as dt, sys, time
    from pathlib import Path
    from pipelines.publish.config import DocumentNumber, Edition
    from pipelines.publish.document_numbers import allocate
    published, start, writer = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    while time.time() < start:
        pass
    for n in range(int(sys.argv[4])):
        number = allocate(published, DocumentNumber(prefix="绩效办"), Edition.parse("2024-03"), writer, dt.datetime(2024, 4, 8))
        print(number, flush=True)
"""


def test_processes_allocating_at_once_never_get_the_same_number(tmp_path):
    published = tmp_path / "published"
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(ALLOCATOR), str(published), str(start), f"w{w}", "10"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        for w in range(6)
    ]
    printed = [line for p in procs for line in p.communicate(timeout=120)[0].split()]
    assert [p.returncode for p in procs] == [0] * 6
    assert sorted(printed) == sorted(f"绩效办〔2024〕{n}号" for n in range(1, 61))
    assert [e["n"] for e in allocated(published)] == list(range(1, 61))


APPROVER = """
    import datetime as dt, sys, time
    from pathlib import Path
    import duckdb
    from pipelines.publish.config import Edition
    from pipelines.publish.editions import approve
    from pipelines.settings import settings
    warehouse, period, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    con = duckdb.connect(str(warehouse), read_only=True)
    while time.time() < start:
        pass
    print(approve(con, Edition.parse(period), settings().published, "张三", dt.datetime(2024, 4, 8, 10, 30)).document_number)
"""


def test_two_approvals_at_once_get_two_numbers(warehouse):
    start = time.time() + 4.0  # both processes import and connect first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(APPROVER), str(warehouse), period, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
            env=dict(os.environ),
        )
        for period in ("2024-02", "2024-03")
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _out, err in outputs]
    numbers = {out.strip() for out, _err in outputs}
    assert numbers == {"绩效办〔2024〕1号", "绩效办〔2024〕2号"}
    code, output = _verify()
    assert code == 0, output


def test_verify_names_two_editions_that_carry_one_number(tmp_path):
    from pipelines.audit.verify import Report, check_document_numbers

    folders = {}
    for key, revision, number in (
        ("2024-02", 1, "X〔2024〕1号"),
        ("2024-03", 1, "X〔2024〕1号"),
        ("2024-03", 2, "X〔2024〕2号"),
    ):
        folder = tmp_path / key / f"r{revision}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"document_number": number}), encoding="utf-8")
        folders[(key, revision)] = folder
    report = Report()
    check_document_numbers(report, folders)
    found = [f"{f.where}: {f.what}" for f in report.mismatches]
    assert any("2024-03 r2" in f and "differs from the edition's earlier X〔2024〕1号" in f for f in found), found
    assert any("X〔2024〕1号" in f and "2024-02, 2024-03" in f for f in found), found


def test_the_number_format_is_checked_when_bulletin_yaml_is_read(tmp_path):
    from pipelines.publish.config import load_bulletin_config
    from pipelines.reference import ConfigError

    assert BulletinConfig().document_number.number(2026, 3) == "〔2026〕3号"
    assert DocumentNumber(prefix="绩效办").number(2026, 3) == "绩效办〔2026〕3号"
    (tmp_path / "bulletin.yaml").write_text('document_number: {prefix: 绩效办, format: "{prefix}第{n}号"}\n')
    with pytest.raises(ConfigError, match="document_number"):
        load_bulletin_config(tmp_path)


# ------------------------------------------------------------------ the command, on a tiny city


@pytest.mark.slow  # a whole run of a tiny city (about a minute), then two approvals as runs
def test_govperf_approve_with_departments_on_a_tiny_city(tmp_path):
    from tests.test_cli_errors import tiny_city

    tiny_city(tmp_path / "inbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    env |= {
        "GOVPERF_HOME": str(tmp_path / "home"),
        "GOVPERF_INBOX": str(tmp_path / "inbox"),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster_home"),
    }
    govperf = str(Path(sys.executable).with_name("govperf"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([govperf, *args], env=env, capture_output=True, text=True, timeout=900)

    assert run("run").returncode == 0
    drafted_on(tmp_path / "home", "2025-08-01 09:00")  # appeal windows closed before the approvals below
    done = run("approve", "--period", "2025-07", "--by", "张三", "--at", "2025-08-10 09:30", "--with-departments")
    assert done.returncode == 0, done.stderr[-3000:]
    pdf = Path(re.search(r"^PDF: (\S+\.pdf) \((\d+) pages, ([\d.]+) s\)$", done.stdout, re.M)[1])
    print(f"PDF of 2025-07 with its department pages: {done.stdout}")  # the render time, for the record
    assert "document number (文号): 绩效办〔2025〕1号" in done.stdout
    texts = _texts(pdf)
    whole = "".join(texts)
    assert RADICALS.findall(whole) == [] and "2025年7月政府部门绩效通报" in _squeezed(whole)
    pages = sorted((pdf.parent / "bulletin_2025-07_departments").glob("*.html"))
    assert pages
    for page in pages:
        name = re.search(r"<h1>(.*?)</h1>", page.read_text(encoding="utf-8"))[1]
        assert name in _squeezed(whole), name
    manifest = json.loads((pdf.parent / "manifest.json").read_text(encoding="utf-8"))
    assert _printed_record_hash(texts) == approval_record_sha256(manifest)
    assert run("verify").returncode == 0
    proof = run("verify", "--proof", str(pdf.parent / "proof.json"))
    assert approval_record_sha256(manifest) in proof.stdout

    august = run("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-09-10 09:30")
    assert august.returncode == 0 and "绩效办〔2025〕2号" in august.stdout, august.stderr[-3000:]

    os.chmod(pdf.parent, stat.S_IRWXU)
    os.chmod(pdf, stat.S_IRUSR | stat.S_IWUSR)
    with open(pdf, "ab") as handle:
        handle.write(b"%\n")
    altered = run("verify")
    assert altered.returncode == 1 and "bulletin_2025-07.pdf: edited" in altered.stdout, altered.stdout
