"""How one file would land, without landing it (`govperf check-config --file F`).

The file is landed exactly as a run would land it (pipelines/ingest/land.py), into a
scratch lake and archive that are removed afterwards: the preview cannot differ from
what a run does, and nothing of it reaches the home's lake, archive or ledger.
"""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.ingest.land import FileLanding, land_file
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.readers import ExtractError
from pipelines.reference import DepartmentRegistry


@dataclass
class Preview:
    source: str
    landing: FileLanding
    first_rows: list[dict]  # accepted rows, canonical columns, as they would be stored
    quarantined: list[tuple[int, str]]  # (line, reason) of the rows that would be quarantined


def source_of(path: Path, mappings: dict[str, SourceMapping], inbox: Path, source: str | None) -> str:
    """The source whose mapping takes `path`: the one named, else the one whose
    file_pattern matches its place in the inbox (or, outside it, its name)."""
    if source is not None:
        if source not in mappings:
            raise ExtractError(f"no mapping for source {source!r}; sources: {', '.join(sorted(mappings))}")
        return source
    try:
        relative = path.resolve().relative_to(inbox.resolve()).as_posix()
    except ValueError:
        relative = None
    matched = [
        name
        for name, mapping in mappings.items()
        if (relative and fnmatch.fnmatch(relative, mapping.file_pattern))
        or fnmatch.fnmatch(path.name, mapping.file_pattern.rsplit("/", 1)[-1])
    ]
    if len(matched) != 1:
        found = (
            f"{len(matched)} mappings match it ({', '.join(matched)})"
            if matched
            else "no mapping's file_pattern matches it"
        )
        raise ExtractError(f"{path.name}: {found}; name its source with --source")
    return matched[0]


def preview_file(
    path: Path, mapping: SourceMapping, registry: DepartmentRegistry, rows: int = 5, quarantined: int = 20
) -> Preview:
    with tempfile.TemporaryDirectory(prefix="govperf-preview-") as scratch:
        lake, archive = Path(scratch) / "lake", Path(scratch) / "archive"
        landing = land_file(path, path.name, mapping, registry, lake, archive)
        first_rows: list[dict] = []
        refused: list[tuple[int, str]] = []
        accepted_files = sorted((lake / mapping.source).glob("*/*.parquet"))
        if accepted_files:
            relation = duckdb.read_parquet([str(p) for p in accepted_files])
            columns = [c.name for c in mapping.table.columns]
            cursor = relation.select(", ".join(f'"{c}"' for c in columns)).limit(rows).fetchall()
            first_rows = [dict(zip(columns, values, strict=True)) for values in cursor]
        quarantine_files = sorted((lake / "quarantine" / mapping.source).glob("*/*.parquet"))
        if quarantine_files:
            relation = duckdb.read_parquet([str(p) for p in quarantine_files])
            refused = [tuple(r) for r in relation.select("line, reason").order("line").limit(quarantined).fetchall()]
    return Preview(mapping.source, landing, first_rows, refused)


def describe(preview: Preview) -> str:
    landing = preview.landing
    kind, _, delimiter = landing.file_format.partition("/")
    lines = [
        f"{landing.file_name}: source {preview.source}, layout {landing.layout or '-'}, "
        f"format {kind}"
        + (f", delimiter {delimiter}" if delimiter else (", delimiter comma" if kind == "csv" else "")),
        f"  encoding {landing.encoding or '-'}, header row {landing.header_line or '-'}, period {landing.period:%Y-%m}",
        f"  rows read {landing.rows_read}: {landing.rows_accepted} would be accepted, "
        f"{landing.rows_quarantined} quarantined"
        + (f", {landing.notes_rows} notes lines" if landing.notes_rows else ""),
    ]
    if landing.file_error:
        lines.append(f"  the file would be refused: {landing.file_error}")
    if preview.first_rows:
        lines.append(f"  first {len(preview.first_rows)} accepted row(s):")
        for row in preview.first_rows:
            lines.append("    " + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    if preview.quarantined and not landing.file_error:
        lines.append(f"  rows that would be quarantined (first {len(preview.quarantined)}):")
        lines += [f"    line {line}: {reason}" for line, reason in preview.quarantined]
    return "\n".join(lines)
