"""A delivery for a month of a frozen year (封账, pipelines/year_freeze.py) is refused
whole, as an unreadable file is: nothing of it is accepted, so it replaces no slice,
and the same bytes land for real once the year is reopened."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from pipelines import year_freeze
from pipelines.ingest import masking
from pipelines.ingest.land import (
    FileLanding,
    _quarantine_whole_file,
    _write_file_load,
    archive_original,
    config_fingerprint,
    first_delivered_at,
    lake_paths,
    land_file,
    read_file_load,
)
from pipelines.ingest.mapping import SourceMapping
from pipelines.ingest.readers import ExtractError, detect_encoding
from pipelines.ingest.sniff import sniff
from pipelines.ledger.events import file_sha256 as sha256_of
from pipelines.reference import DepartmentRegistry
from pipelines.text import printable
from pipelines.warehouse import duckdb_connection
from pipelines.year_freeze import REFUSED_FINGERPRINT_SUFFIX, is_refusal


def landed_for_real(lake: Path, source: str, period: dt.date, file_hash: str) -> bool:
    """Whether these bytes have landed for the period, and were not refused for a frozen
    year (pipelines/year_freeze.py): what a freeze lets land again as before."""
    path = lake_paths(lake, source, period, file_hash)["file_load"]
    return path.exists() and not is_refusal(read_file_load(path).file_error)


def refuse_file(
    path: Path,
    file_name: str,
    mapping: SourceMapping,
    registry: DepartmentRegistry,
    lake: Path,
    archive_dir: Path,
    reason: str,
) -> FileLanding:
    """Refuse a whole file without reading its rows (a delivery for a frozen year,
    pipelines/year_freeze.py), as an unreadable file is refused: its original is
    archived, each non-blank line of a text file (else the file as one row) goes to
    quarantine with `reason`, and the file log carries `reason` as its file_error.
    Nothing is accepted, so it replaces no slice. Its fingerprint is marked, so that
    the same bytes are landed for real once they are no longer refused."""
    period = mapping.period_of(file_name)
    if period is None:
        raise ExtractError(
            f"{printable(file_name)}: the file name carries no period matching {mapping.period_pattern!r}"
        )
    file_hash = sha256_of(path)
    fingerprint = config_fingerprint(mapping, registry) + REFUSED_FINGERPRINT_SUFFIX
    reason = printable(masking.mask_free_text(reason))
    paths = lake_paths(lake, mapping.source, period, file_hash)
    if paths["file_load"].exists() and paths["accepted"].exists():
        earlier = read_file_load(paths["file_load"])
        if earlier.config_fingerprint == fingerprint and earlier.file_error == reason:
            return earlier
    archived = archive_original(path, file_hash, archive_dir)
    kind = sniff(path)
    encoding = None
    if kind.family == "text":
        try:
            encoding = detect_encoding(path) if mapping.encoding == "auto" else mapping.encoding
        except ExtractError:
            encoding = None  # its lines are quarantined as UTF-8, bad bytes replaced
    landing = FileLanding(
        source=mapping.source,
        period=period,
        file_name=file_name,
        file_hash=file_hash,
        file_format=kind.name,
        layout=None,
        encoding=encoding,
        header_line=None,
        rows_read=0,
        rows_accepted=0,
        rows_quarantined=0,
        notes_rows=0,
        file_error=reason,
        archive_path=str(archived.relative_to(archive_dir.parent)),
        config_fingerprint=fingerprint,
        submitted_at=first_delivered_at(
            lake,
            mapping.source,
            period,
            file_hash,
            dt.datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0),
        ),
        loaded_at=dt.datetime.now().replace(microsecond=0),
    )
    for target in paths.values():
        target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govperf-ingest-") as workdir:
        con = duckdb_connection()
        try:
            con.execute(f"set temp_directory='{workdir}'")
            masking.register(con)
            _quarantine_whole_file(con, path, landing, mapping, paths, Path(workdir))
        finally:
            con.close()
    _write_file_load(landing, paths["file_load"])
    return landing


def land_unless_frozen(
    path: Path,
    name: str,
    mapping: SourceMapping,
    month: dt.date,
    registry: DepartmentRegistry,
    lake: Path,
    archive: Path,
    frozen: dict | None,
) -> FileLanding:
    """Land the file, unless its month's year is frozen and these bytes had not landed
    before (docs/methodology.md §13j): then refuse it, a resubmission (the month has
    a landed file) or a first delivery alike. Bytes landed before the freeze land again
    as before (a new version's landing rules, a new masking key)."""
    if frozen is None:
        return land_file(path, name, mapping, registry, lake, archive)
    file_hash = sha256_of(path)
    if landed_for_real(lake, mapping.source, month, file_hash):
        return land_file(path, name, mapping, registry, lake, archive)
    logs = lake_paths(lake, mapping.source, month, file_hash)["file_load"].parent
    landed = [p for p in logs.glob("*.parquet") if landed_for_real(lake, mapping.source, month, p.stem)]
    label = f"{month:%Y-%m}" if mapping.months_per_period == 1 else f"the period starting {month:%Y-%m}"
    reason = year_freeze.refusal_reason(name, label, frozen, resubmission=bool(landed))
    return refuse_file(path, name, mapping, registry, lake, archive, reason)
