"""The published edition as a PDF (bulletin_<key>.pdf beside its HTML in the revision folder).

`govperf approve` prints the edition it has just written (its HTML: CSS and SVG charts
inline) with WeasyPrint, which lays out with Debian's pango and the fonts fontconfig
finds: A4 with GB/T 9704's margins, a running header (the edition's title; its 文号
and version), 第 N 页 / 共 M 页 at the foot of each page, and the approval record's
SHA-256 on the last page. reports/static/pdf.css holds the page and type rules (and
names the free fonts standing in for GB/T 9704's). With `--with-departments` the
department pages follow as an appendix, each on a new page, in the ranking's order.

Why WeasyPrint and not the browser: chromium's PDF text layer maps Noto CJK glyphs
that an ideograph shares with a radical to the radical (月 becomes U+2F49 ⽉), so text
copied or searched in its PDFs is wrong. WeasyPrint writes the text it shaped.

The approval record is the manifest without its hashes of the files
(`approval_record`): the manifest holds the PDF's SHA-256, so the PDF cannot hold the
manifest's; it prints the record's instead, which anyone can recompute from
manifest.json (`approval_record_sha256`; `govperf verify --proof` shows it too).

WeasyPrint is imported here only, when a PDF is written: it takes about a second to
import, and nothing else needs it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from pipelines.ledger.canonical import canonical_bytes

# Beside bulletin.css (pipelines/publish/bulletin.py is not imported here: `govperf verify
# --proof` recomputes the record's hash with this module alone).
PDF_STYLESHEET = Path(__file__).resolve().parents[2] / "reports" / "static" / "pdf.css"
# What the approval record leaves out of the manifest: the hashes of the files, one of
# which is the PDF that prints the record's hash.
NOT_IN_RECORD = ("files_sha256", "edition_sha256")
# The PDF is refused if no CJK face of these was used: without one, fontconfig falls
# back to a font with no Chinese glyphs and every character prints as a box.
CJK_FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC", "Source Han Serif SC", "Source Han Sans SC")


class PdfNotWritten(Exception):
    """The edition could not be printed as it should be (no CJK font)."""


def approval_record(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The approval record: manifest.json's content without `files_sha256` and
    `edition_sha256` (the approval as it was when the edition was drawn)."""
    return {key: value for key, value in manifest.items() if key not in NOT_IN_RECORD}


def approval_record_sha256(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the approval record's canonical JSON (RFC 8785, pipelines/ledger/canonical.py).
    By hand: `rfc8785.dumps({k: v for k, v in json.load(open("manifest.json")).items()
    if k not in ("files_sha256", "edition_sha256")})`, then SHA-256 of those bytes."""
    return hashlib.sha256(canonical_bytes(approval_record(manifest))).hexdigest()


RECORD = jinja2.Environment(autoescape=True).from_string(
    """<section class="pdf-record">
<h3>签发记录</h3>
<table>
<tr><th scope="row">文号</th><td>{{ number }}</td></tr>
<tr><th scope="row">审核签发</th><td>{{ a.approved_by }} · {{ a.approved_at }}</td></tr>
{% if a.get("run_id") %}<tr><th scope="row">签发运行编号</th><td>{{ a.run_id }}</td></tr>{% endif %}
<tr><th scope="row">签发记录哈希</th><td>SHA-256 <code class="record-sha256">{{ record_sha256 }}</code></td></tr>
</table>
<p class="note">签发记录即本版 manifest.json 去掉 files_sha256 与 edition_sha256 两项后的内容，上列哈希为其 RFC 8785 规范 JSON 的 SHA-256，可由 manifest.json 重算核对（govperf verify --proof 亦显示该值）。manifest.json 记有本 PDF 文件的 SHA-256，故本文件印签发记录的哈希，而非清单的哈希。</p>
</section>
"""
)


@dataclass(frozen=True)
class WrittenPdf:
    path: Path
    pages: int
    seconds: float  # layout and writing, WeasyPrint's import included when it was the first


def document_label(approval: Mapping[str, Any]) -> str:
    """绩效办〔2026〕3号 · 第 2 版: the running header's right-hand side."""
    return " · ".join(part for part in (approval.get("document_number"), approval.get("version_label")) if part)


def write_pdf(
    html: Path,
    out: Path,
    approval: Mapping[str, Any],
    title: str,
    department_pages: Sequence[Path] = (),
) -> WrittenPdf:
    """Print the edition `html` (as render_edition wrote it, approved by `approval`) to
    `out`; the pages in `department_pages` follow it as an appendix."""
    started = time.perf_counter()
    import weasyprint

    text = _document(html, approval, title, department_pages)
    document = weasyprint.HTML(string=text, base_url=str(html.parent)).render()
    document.write_pdf(out)
    used = {font.family for font in document.fonts.values()}
    if not used & set(CJK_FAMILIES):
        out.unlink(missing_ok=True)
        raise PdfNotWritten(
            f"no CJK font for the PDF (fontconfig gave {', '.join(sorted(used)) or 'none'}): "
            "install Debian's fonts-noto-cjk (Noto Serif CJK SC, Noto Sans CJK SC)"
        )
    return WrittenPdf(out, len(document.pages), time.perf_counter() - started)


def _document(html: Path, approval: Mapping[str, Any], title: str, department_pages: Sequence[Path]) -> str:
    """The edition's HTML with the PDF's stylesheet and header last in <head>, then its
    department pages (if any) and the approval record before </body>."""
    from pipelines.publish.wording import css_string

    edition = html.read_text(encoding="utf-8")
    page_style = (
        "<style>\n"
        + PDF_STYLESHEET.read_text(encoding="utf-8")
        + f"\n@page {{ @top-left {{ content: {css_string(title)}; }}"
        f" @top-right {{ content: {css_string(document_label(approval))}; }} }}\n</style>\n"
    )
    appendix = ""
    if department_pages:
        folder = department_pages[0].parent.name  # bulletin_<key>_departments
        order = {name: edition.find(f'{folder}/{name}.html"') for name in (p.stem for p in department_pages)}
        pages = sorted(department_pages, key=lambda p: (order[p.stem] < 0, order[p.stem], p.stem))
        # Links to a department page now go to its section of this PDF.
        edition = re.sub(rf'href="{re.escape(folder)}/([^"/]+)\.html"', r'href="#pdf-department-\1"', edition)
        appendix = '<h1 class="pdf-appendix-title">附件　部门页面</h1>\n' + "".join(
            _department_section(page, html.name) for page in pages
        )
    record = RECORD.render(
        a=approval,
        number=document_label(approval),
        record_sha256=approval_record_sha256(approval),
    )
    head_end = edition.index("</head>")
    body_end = edition.rindex("</body>")
    return edition[:head_end] + page_style + edition[head_end:body_end] + appendix + record + edition[body_end:]


def _department_section(page: Path, edition_name: str) -> str:
    """A department page's body as a section of the PDF: its footer (the edition's says
    the same) left out, its ids prefixed so that they stay unique, and its links back to
    the edition turned into links within the PDF."""
    text = page.read_text(encoding="utf-8")
    body = text[text.index(">", text.index("<body")) + 1 : text.rindex("</body>")]
    body = re.sub(r"<footer>.*?</footer>", "", body, flags=re.DOTALL)
    name = page.stem
    body = re.sub(r'(\s)id="([^"]+)"', rf'\1id="{name}-\2"', body)
    body = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', body)
    body = body.replace(f'href="../{edition_name}#', 'href="#').replace(f'href="../{edition_name}"', 'href="#summary"')
    return f'<section class="pdf-department" id="pdf-department-{name}">{body}</section>\n'
