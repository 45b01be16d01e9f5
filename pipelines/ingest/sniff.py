"""What a file really is, told from its first bytes, whatever its name or mapping says.

Government systems name files loosely: a workbook arrives as .csv, an HTML table or
an Excel 2003 XML workbook as .xls, a WPS workbook as .et. A mapping's `format` names
a family: `csv` a delimited text file, `xlsx` or `xls` a workbook. A workbook is read
whatever its container (XLSX, the legacy binary XLS or WPS's .et, an HTML table, an
Excel 2003 XML workbook), and the file log records which one it was. A file of the
other family, or of neither (a PDF, a Word document, a zip of something else), is
refused as a whole, with what it really is, never read line by line as text.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SNIFF_BYTES = 64 * 1024
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
SPREADSHEETML_NAMESPACE = b"urn:schemas-microsoft-com:office:spreadsheet"
_MARKUP_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(!doctype\s+html|html|table|head|meta|body)\b", re.I | re.S
)

# Text holds few control characters; a stray NUL in a field is a row's problem, not
# the file's. Above this share of control bytes (tab, newlines, form feed and escape
# excepted), the file is binary.
BINARY_CONTROL_SHARE = 0.05
_CONTROL = bytes(set(range(32)) - set(b"\t\n\r\f\x1b")) + b"\x7f"
_NOT_CONTROL = bytes(set(range(256)) - set(_CONTROL))

Family = Literal["text", "workbook", "other"]


@dataclass(frozen=True)
class FileKind:
    """What the file is: `name` goes into the file log, `family` decides whether a
    mapping's format fits, `described` is said to the user."""

    name: str  # csv, xlsx, xls, html, spreadsheetml2003, ods, docx, zip, pdf, binary
    family: Family
    described: str


TEXT = FileKind("csv", "text", "a text file")
XLSX = FileKind("xlsx", "workbook", "an XLSX workbook (a zip container)")
OLE2 = FileKind("xls", "workbook", "a legacy binary workbook (an OLE2 compound file: XLS, or WPS's .et)")
HTML = FileKind("html", "workbook", "an HTML table (as some systems save an .xls)")
SPREADSHEETML = FileKind("spreadsheetml2003", "workbook", "an Excel 2003 XML workbook (SpreadsheetML)")


def family_of_format(mapping_format: str) -> Family:
    return "text" if mapping_format == "csv" else "workbook"


def sniff(path: Path) -> FileKind:
    """The kind of the file at `path`, from its content alone."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(ZIP_MAGICS):
        return _zip_kind(path)
    if head.startswith(OLE2_MAGIC):
        return OLE2
    if head.startswith(b"%PDF-"):
        return FileKind("pdf", "other", "a PDF document")
    text = _as_ascii_text(head)
    if text is None:
        return FileKind("binary", "other", "a binary file (not text: many control bytes)")
    if SPREADSHEETML_NAMESPACE in text[:4096] and re.match(rb"\s*<\?xml", text):
        return SPREADSHEETML
    if _MARKUP_START.match(text[:4096]):
        return HTML
    return TEXT


def _zip_kind(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return FileKind("zip", "other", "a damaged zip container")
    if "xl/workbook.xml" in names:
        return XLSX
    if "content.xml" in names and "mimetype" in names:
        return FileKind("ods", "other", "an OpenDocument file (.ods/.odt; save it as XLSX)")
    if "word/document.xml" in names:
        return FileKind("docx", "other", "a Word document (.docx)")
    return FileKind("zip", "other", "a zip archive that is not a workbook")


def _as_ascii_text(head: bytes) -> bytes | None:
    """The head as bytes in which markup can be looked for, or None for binary.
    UTF-16 (with its BOM) is narrowed to its ASCII; any other text keeps its bytes."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            body = head[len(bom) :]
            return body[: len(body) // 2 * 2].decode(codec, errors="replace").encode("ascii", errors="replace")
    if _looks_utf16(head):
        return head.replace(b"\x00", b"")
    if head and len(head.translate(None, _NOT_CONTROL)) > BINARY_CONTROL_SHARE * len(head):
        return None
    return head.removeprefix(codecs.BOM_UTF8)


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without its mark: mostly ASCII, so NUL in nearly every other byte."""
    pairs = len(head) // 2
    return pairs >= 8 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * pairs


def mismatch(kind: FileKind, mapping_format: str, file_name: str) -> str | None:
    """The refusal for a file whose kind does not fit the mapping's format, or None."""
    wanted = family_of_format(mapping_format)
    if kind.family == wanted:
        return None
    expected = "a delimited text file" if wanted == "text" else "a workbook"
    return (
        f"{file_name}: the file is {kind.described}, but its mapping declares format {mapping_format} "
        f"({expected}); nothing of it was read"
    )
