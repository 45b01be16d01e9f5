"""Which of a source's layouts reads a file (the mapping's `layouts`, pipelines/ingest/mapping.py).

A layout fits a file when its format is of the file's family (pipelines/ingest/sniff.py).
Among those, the layout finding the most of its mapped columns (each under any of its
aliases) in one row of the file's head wins: that row, split by the layout's delimiter
(or each candidate one), in the first rows of a text file or of any sheet of a
workbook. Two layouts finding as many is a file-level error naming both, never a
guess; the file log records the layout used.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.ingest.csv_scan import DELIMITERS
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.readers import (
    HEADER_SEARCH_ROWS,
    ExtractError,
    _csv_head,
    _normalise_header,
    detect_encoding,
)
from pipelines.ingest.sniff import FileKind, family_of_format

EXACT_FORMAT = {"csv": "csv", "xlsx": "xlsx", "xls": "xls", "html": "xls", "spreadsheetml2003": "xls"}


def choose_layout(path: Path, kind: FileKind, mapping: SourceMapping, file_name: str) -> tuple[str, SourceMapping]:
    """The name of the layout that reads `path`, and its mapping."""
    candidates = mapping.layout_mappings()
    if len(candidates) == 1:
        return candidates[0]
    fitting = [(name, layout) for name, layout in candidates if family_of_format(layout.format) == kind.family]
    if not fitting:
        listed = ", ".join(f"{name} ({layout.format})" for name, layout in candidates)
        raise ExtractError(
            f"{file_name}: the file is {kind.described}; none of the source's layouts reads it ({listed})"
        )
    if len(fitting) == 1:
        return fitting[0]
    if kind.family == "workbook":  # the limits bound reading the sheets, here as in the reader
        from pipelines.ingest.workbook_reader import _check_workbook_limits

        _check_workbook_limits(path, fitting[0][1])
    heads = _heads(path, kind, fitting)
    # A layout whose every column is in the header first, then the fewest missing, then the
    # most found (a layout that is another's subset loses to it only when that one is
    # complete too), then one declaring the file's own format (xlsx for an XLSX container,
    # xls for a legacy or markup workbook) before one of its family.
    exact = EXACT_FORMAT.get(kind.name, kind.name)
    scored = []
    for name, layout in fitting:
        found = _columns_found(heads, layout)
        missing = len(layout.header_groups) - found
        scored.append(((missing == 0, -missing, found, layout.format == exact), name, layout))
    scored.sort(key=lambda item: item[0], reverse=True)
    best, name, layout = scored[0]
    tied = [n for score, n, _layout in scored if score == best]
    if len(tied) > 1:
        raise ExtractError(
            f"{file_name}: layouts {tied[0]!r} and {tied[1]!r} both find {best[2]} of their columns in the header, "
            f"missing {-best[1]}; give one of them a header the other does not have"
        )
    return name, layout


def _heads(path: Path, kind: FileKind, fitting: list[tuple[str, SourceMapping]]) -> list[list[list[object]]]:
    """The file's first rows, as each way of reading it splits them: per delimiter a
    text file may use, or per sheet of a workbook."""
    if kind.family == "text":
        encodings = {layout.encoding for _name, layout in fitting}
        delimiters = {
            d for _name, layout in fitting for d in (DELIMITERS if layout.delimiter == "auto" else [layout.delimiter])
        }
        heads = []
        for encoding in encodings:
            read_as = detect_encoding(path) if encoding == "auto" else encoding
            if read_as.lower().replace("-", "") in ("utf8", "ascii"):
                read_as = "utf-8-sig"
            heads += [_csv_head(path, read_as, delimiter) for delimiter in sorted(delimiters)]
        return heads
    from pipelines.ingest.workbook_reader import _sheet_rows

    return [rows[:HEADER_SEARCH_ROWS] for _title, rows in _sheet_rows(path, kind, fitting[0][1])]


def _columns_found(heads: list[list[list[object]]], layout: SourceMapping) -> int:
    """The most of the layout's columns any one row of the heads holds."""
    groups = [{_normalise_header(h) for h in group} for group in layout.header_groups]
    best = 0
    for rows in heads:
        for row in rows:
            present = {_normalise_header(v) for v in row}
            best = max(best, sum(1 for group in groups if present & group))
    return best
