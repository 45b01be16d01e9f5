"""Refuse a workbook too large to read, before reading it.

The workbook reader (calamine) loads every sheet whole, so memory grows with the
sheets' uncompressed size: a 65 MB XLSX can hold 1 GB of sheet XML. An XLSX is a
zip: the sizes its directory declares are checked first (no decompression), then
its sheets are decompressed as a stream, counting bytes and rows, stopping at the
first limit passed. A zip that understates a size cannot slip through: the zip
reader stops at the declared size, and the CRC then fails, which refuses the
file as unreadable. A legacy XLS is not
compressed, so its file size bounds what it holds (and a BIFF sheet has at most
65,536 rows).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pipelines.ingest.mapping import ReadLimits

# Every part is measured, not only those at the usual names: the workbook's own
# relationships say where its sheets are, and a sheet can sit anywhere in the zip.
# Rows are counted in every XML part (only a sheet holds <row> elements).
# A row element, with or without a namespace prefix: <row …>, <x:row …>.
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s>/]")
_STREAM_CHUNK = 1 << 20


class WorkbookTooLarge(Exception):
    """The workbook is over a limit; the message names file, limit and figure."""


def check_workbook(path: Path, limits: ReadLimits, file_name: str) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        _check_xls(path, limits, file_name)
        return
    with archive:
        parts = [info for info in archive.infolist() if not info.is_dir()]
        declared = sum(info.file_size for info in parts)
        if declared > limits.max_workbook_bytes:
            raise WorkbookTooLarge(_too_large(file_name, declared, limits, "declared by the zip, not read"))
        uncompressed, rows = 0, 0
        for info in parts:
            counts_rows = info.filename.lower().endswith(".xml")
            tail = b""
            with archive.open(info) as stream:
                while chunk := stream.read(_STREAM_CHUNK):
                    uncompressed += len(chunk)
                    if uncompressed > limits.max_workbook_bytes:
                        raise WorkbookTooLarge(_too_large(file_name, uncompressed, limits, "found while reading"))
                    if counts_rows:
                        # A tag cut by the chunk's end is found in the next one: keep a short tail.
                        window = tail + chunk
                        rows += len(_ROW_TAG.findall(window)) - len(_ROW_TAG.findall(tail))
                        tail = window[-16:]
                        if rows > limits.max_workbook_rows:
                            raise WorkbookTooLarge(
                                f"{file_name}: the workbook holds more than {limits.max_workbook_rows:,} rows "
                                f"(counted {rows:,} before stopping), over limits.max_workbook_rows; "
                                "split the extract or raise the limit in the mapping"
                            )


def _too_large(file_name: str, size: int, limits: ReadLimits, how: str) -> str:
    return (
        f"{file_name}: the workbook's sheets hold {size:,} bytes uncompressed ({how}), over "
        f"limits.max_workbook_bytes = {limits.max_workbook_bytes:,}; split the extract or raise the limit in the mapping"
    )


def _check_xls(path: Path, limits: ReadLimits, file_name: str) -> None:
    size = path.stat().st_size
    if size > limits.max_workbook_bytes:
        raise WorkbookTooLarge(
            f"{file_name}: the XLS workbook is {size:,} bytes, over limits.max_workbook_bytes = "
            f"{limits.max_workbook_bytes:,}; split the extract or raise the limit in the mapping"
        )
