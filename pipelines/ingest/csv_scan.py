"""Scan a UTF-8 CSV once, in bounded memory: the line on which each record
starts, which lines are notes, and which records hold a field longer than the
field limit or are longer than the record limit.

The scan reads the file in chunks and never holds more than one record (and
not even that when the record is over a limit), so a file with a 500 MB line,
of one field or of many short ones, costs a few chunks of memory, not the line. It is independent of
the DuckDB parser, so that the parser skipping a line cannot hide it: rows
read are counted here.

Records follow RFC 4180 as Python's csv module reads them: a quote opens a
quoted field only at the start of a field, `""` inside one is a quote, and a
newline inside one belongs to the field (the record then spans lines).
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

CHUNK_BYTES = 1 << 22
# What a quarantined oversized record keeps of its text: enough to find it.
HEAD_BYTES = 2048
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}  # the ones a file may use

_FIELD_START, _UNQUOTED, _QUOTED, _QUOTE_IN_QUOTED = range(4)


@dataclass(frozen=True)
class OversizedRecord:
    """A record one of whose fields is longer than the field limit, or that is
    itself longer than the record limit."""

    line: int  # the record's first line
    column: int  # 1-based: the first field over the field limit, or the field where the record passed its limit
    size: int  # that field's bytes (or, for a whole record, the record's), as written
    start: int  # byte offset of the record in the file
    end: int  # byte offset just after it (after its newline)
    newlines: int  # newlines within [start, end)
    head: str  # the record's first bytes, decoded, for the quarantine
    whole_record: bool = False  # over the record limit, with no single field over the field limit


@dataclass
class CsvScan:
    record_lines: array = field(default_factory=lambda: array("q"))
    notes_lines: array = field(default_factory=lambda: array("q"))
    oversized: list[OversizedRecord] = field(default_factory=list)
    longest_record: int = 0  # bytes, among the records the parser will read
    # DuckDB numbers a line as if no quoted field held a newline. For each record that
    # does: (its first line as DuckDB numbers it, the newlines inside records so far).
    shifts: list[tuple[int, int]] = field(default_factory=list)

    def physical_line(self, parser_line: int) -> int:
        """The line in the file of a line DuckDB's parser names."""
        at = bisect.bisect_left(self.shifts, (parser_line, 0))  # records starting before it
        return parser_line + (self.shifts[at - 1][1] if at else 0)


def _first_only(fields: list[str]) -> bool:
    return bool(fields) and bool(fields[0].strip()) and not any(f.strip() for f in fields[1:])


def is_notes(fields: list[str], notes: re.Pattern[str], in_notes: bool = False) -> bool:
    """A notes line (注：…, 数据来源：…) has text in its first field only. Below a
    notes line, a line with text in its first field only continues the notes
    (a numbered note's second point, indented with full-width spaces)."""
    return _first_only(fields) and (in_notes or bool(notes.match(fields[0].strip())))


class _Classifier:
    """Sorts finished records into data records and notes, as they come."""

    def __init__(self, header_line: int, notes: re.Pattern[str], delimiter: str = ",") -> None:
        self.header_line = header_line
        self.notes = notes
        self.delimiter = delimiter
        self.in_notes = False
        self.scan = CsvScan()

    def plain(self, line: int, record: bytes) -> None:
        """A record without quotes: one line, fields split at commas."""
        if line <= self.header_line:
            return
        text = record.decode("utf-8")
        # Cheap tests first: most lines are neither blank nor notes.
        if not text.strip(" \t\r\n" + self.delimiter):
            return
        if (self.in_notes or self.notes.match(text)) and is_notes(
            text.rstrip("\r\n").split(self.delimiter), self.notes, self.in_notes
        ):
            self.in_notes = True
            self.scan.notes_lines.append(line)
        else:
            self.in_notes = False
            self.scan.record_lines.append(line)
        self.scan.longest_record = max(self.scan.longest_record, len(record))

    def quoted(self, line: int, record: bytes) -> None:
        """A record with quotes, perhaps over several lines: parsed by the csv module."""
        inside = record.count(b"\n") - record.endswith(b"\n")
        if inside:
            before = self.scan.shifts[-1][1] if self.scan.shifts else 0
            self.scan.shifts.append((line - before, before + inside))
        if line <= self.header_line:
            return
        row = next(csv.reader(io.StringIO(record.decode("utf-8"), newline=""), delimiter=self.delimiter), [])
        if not any(cell.strip() for cell in row):
            return
        self.in_notes = is_notes(row, self.notes, self.in_notes)
        (self.scan.notes_lines if self.in_notes else self.scan.record_lines).append(line)
        self.scan.longest_record = max(self.scan.longest_record, len(record))

    def too_long(self, found: OversizedRecord) -> None:
        if found.line <= self.header_line:
            return
        self.in_notes = False
        self.scan.record_lines.append(found.line)
        self.scan.oversized.append(found)


class _RecordReader:
    """The state of the record being read, carried from one chunk to the next."""

    def __init__(self, classifier: _Classifier, max_field_bytes: int, max_record_bytes: int, start: int) -> None:
        self.out = classifier
        self.limit = max_field_bytes
        # Never below the field limit: the fast path below relies on it.
        self.record_limit = max(max_record_bytes, max_field_bytes)
        self.line = 1  # physical line at the read position
        self.separator = ord(classifier.delimiter)
        self.field_end = re.compile(b"[" + re.escape(classifier.delimiter.encode()) + b"\n]")
        self.offset = start  # file offset of the next chunk's first byte
        self._new_record(start)

    def _new_record(self, start: int) -> None:
        self.state = _FIELD_START
        self.record_start = start  # file offset
        self.record_line = self.line
        self.pending = bytearray()  # the record's bytes from earlier chunks
        self.has_quotes = False
        self.column = 1
        self.field_bytes = 0
        self.record_bytes = 0  # fields and separators so far
        self.over: tuple[int, int] | None = None  # (column, size) of the first field over the limit
        self.whole_record = False  # the record, not one field, is over its limit
        self.head = b""
        self.record_newlines = 0

    def _grow_field(self, count: int, chunk: bytes, record_pos: int) -> None:
        self.field_bytes += count
        self.record_bytes += count
        if self.over is None and (self.field_bytes > self.limit or self.record_bytes > self.record_limit):
            self.whole_record = self.field_bytes <= self.limit
            self.over = (self.column, self.field_bytes)
            self.head = (bytes(self.pending[:HEAD_BYTES]) + chunk[record_pos : record_pos + HEAD_BYTES])[:HEAD_BYTES]
            self.pending = bytearray()  # the record is not kept: it goes to quarantine

    def _end_field(self) -> None:
        if self.over is not None and self.over[0] == self.column and not self.whole_record:
            self.over = (self.column, self.field_bytes)
        self.column += 1
        self.record_bytes += 1  # the separator
        self.field_bytes = 0

    def _end_record(self, chunk: bytes, start_in_chunk: int, end_in_chunk: int) -> None:
        """The record ends at `end_in_chunk` (just after its newline, or at the end of the file)."""
        self._end_field()
        end = self.offset + end_in_chunk
        if self.over is not None:
            self.out.too_long(
                OversizedRecord(
                    line=self.record_line,
                    column=self.over[0],
                    size=self.record_bytes if self.whole_record else self.over[1],
                    start=self.record_start,
                    end=end,
                    newlines=self.record_newlines,
                    head=self.head.decode("utf-8", errors="ignore"),
                    whole_record=self.whole_record,
                )
            )
        else:
            record = bytes(self.pending) + chunk[start_in_chunk:end_in_chunk]
            (self.out.quoted if self.has_quotes else self.out.plain)(self.record_line, record)
        self._new_record(end)

    def feed(self, chunk: bytes) -> None:
        """Read one chunk; a record left unfinished at its end is carried over."""
        pos, size = 0, len(chunk)
        record_pos = 0  # where the current record's bytes start in this chunk
        while pos < size:
            if self.state == _FIELD_START and self.column == 1 and not self.pending and self.over is None:
                # Fast path: a whole line without quotes, no longer than the limit,
                # is a record none of whose fields can be over it.
                newline = chunk.find(b"\n", pos)
                if newline >= 0 and newline - pos <= self.limit and chunk.find(b'"', pos, newline) < 0:
                    self.out.plain(self.line, chunk[pos : newline + 1])
                    self.line += 1
                    pos = newline + 1
                    self._new_record(self.offset + pos)
                    record_pos = pos
                    continue
            if self.state == _FIELD_START:
                if chunk[pos] == 0x22:  # a quote opens a quoted field
                    self.state, self.has_quotes = _QUOTED, True
                    pos += 1
                else:
                    self.state = _UNQUOTED
                continue
            if self.state == _UNQUOTED:
                match = self.field_end.search(chunk, pos)
                stop = match.start() if match else size
                if chunk.find(b'"', pos, stop) >= 0:
                    self.has_quotes = True
                self._grow_field(stop - pos, chunk, record_pos)
                if match is None:
                    pos = size
                    break
                pos = stop + 1
                if chunk[stop] == self.separator:
                    self._end_field()
                    self.state = _FIELD_START
                else:
                    self.record_newlines += 1
                    self.line += 1
                    self._end_record(chunk, record_pos, pos)
                    record_pos = pos
                continue
            if self.state == _QUOTED:
                quote = chunk.find(b'"', pos)
                stop = quote if quote >= 0 else size
                newlines = chunk.count(b"\n", pos, stop)
                self.line += newlines
                self.record_newlines += newlines
                self._grow_field(stop - pos, chunk, record_pos)
                if quote < 0:
                    pos = size
                    break
                pos = quote + 1
                self.state = _QUOTE_IN_QUOTED
                continue
            # _QUOTE_IN_QUOTED: a doubled quote is a quote; else the field has closed.
            byte = chunk[pos]
            if byte == 0x22:
                self._grow_field(2, chunk, record_pos)
                self.state = _QUOTED
                pos += 1
            elif byte == self.separator:
                self._end_field()
                self.state = _FIELD_START
                pos += 1
            elif byte == 0x0A:
                pos += 1
                self.record_newlines += 1
                self.line += 1
                self._end_record(chunk, record_pos, pos)
                record_pos = pos
            else:  # text after the closing quote (the csv module keeps it)
                self.state = _UNQUOTED
        if self.over is None:
            self.pending += chunk[record_pos:]
        self.offset += size

    def finish(self) -> None:
        """The file ended; a last record without a newline still counts."""
        if self.pending or self.over is not None or self.column > 1 or self.state != _FIELD_START:
            self._end_record(b"", 0, 0)


def scan_csv(
    utf8_path: Path,
    header_line: int,
    notes: re.Pattern[str],
    max_field_bytes: int,
    max_record_bytes: int | None = None,
    delimiter: str = ",",
) -> CsvScan:
    """Every record's first line and the notes lines after the header, and the
    records with a field over `max_field_bytes` or longer than `max_record_bytes`
    (default: twice the field limit). Blank lines are not records. Fields are split
    at `delimiter` (one of DELIMITERS)."""
    classifier = _Classifier(header_line, notes, delimiter)
    with utf8_path.open("rb") as handle:
        chunk = handle.read(CHUNK_BYTES)
        bom = len(codecs.BOM_UTF8) if chunk.startswith(codecs.BOM_UTF8) else 0
        reader = _RecordReader(classifier, max_field_bytes, max_record_bytes or 2 * max_field_bytes, start=bom)
        chunk = chunk[bom:]
        while chunk:
            reader.feed(chunk)
            chunk = handle.read(CHUNK_BYTES)
    reader.finish()
    return classifier.scan


def without_records(source: Path, target: Path, records: list[OversizedRecord]) -> None:
    """Copy `source` to `target` with each of `records` replaced by its newlines
    only, so that the parser never reads them and every other line keeps its number."""
    with source.open("rb") as src, target.open("wb") as dst:
        position = 0
        for record in records:
            _copy_range(src, dst, position, record.start)
            # Its line ends as the file's do (the parser expects one kind).
            src.seek(max(record.end - 2, record.start))
            ending = b"\r\n" if src.read(2) == b"\r\n" else b"\n"
            dst.write(ending * record.newlines)
            position = record.end
        src.seek(position)
        while chunk := src.read(CHUNK_BYTES):
            dst.write(chunk)


def _copy_range(src, dst, start: int, end: int) -> None:
    src.seek(start)
    left = end - start
    while left > 0:
        chunk = src.read(min(CHUNK_BYTES, left))
        if not chunk:
            break
        dst.write(chunk)
        left -= len(chunk)


def read_head_lines(path: Path, count: int, encoding: str = "utf-8-sig", max_line_bytes: int = 1 << 20) -> str:
    """The file's first `count` lines as text, each cut at `max_line_bytes`, for
    finding the header: a hostile first line costs no more than that."""
    lines = []
    with path.open("rb") as handle:
        for _ in range(count):
            line = handle.readline(max_line_bytes)
            if not line:
                break
            if not line.endswith(b"\n"):  # cut: skip the rest of the line
                while (rest := handle.readline(max_line_bytes)) and not rest.endswith(b"\n"):
                    pass
                line += b"\n"
            lines.append(line)
    return b"".join(lines).decode(encoding, errors="replace")
