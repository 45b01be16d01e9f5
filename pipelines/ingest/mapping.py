"""Source mapping files: how one kind of departmental extract is read.

Onboarding a new extract means writing one YAML file under sources/mappings/,
not code. The file is validated against the canonical table it feeds, and every
mistake is reported with the file and the key it is under.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.ingest.canonical import CANONICAL, CanonicalTable
from pipelines.reference import ConfigError, load_yaml_model

DEFAULT_PLACEHOLDERS = ["", "—", "－", "-", "--", "/", "无", "空", "NULL", "null", "N/A", "n/a", "#N/A"]
DEFAULT_NOTES = r"^\s*(注|数据来源|说明|备注|制表|填报说明)\s*[:：]"
DEFAULT_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d"]
DEFAULT_TIMESTAMP_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y年%m月%d日 %H时%M分%S秒",
    "%Y年%m月%d日 %H时%M分",
    "%Y年%m月%d日%H时%M分",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y%m%d %H%M%S",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unpivot(_Strict):
    """Wide columns become (name, value) rows: a survey's question columns, or a
    yearbook's year columns."""

    columns: dict[str, str] = {}  # source header -> name
    # Or every header matching this pattern; the name is its `name` group, else the header.
    header_pattern: str | None = None
    name_column: str  # canonical column receiving the name
    value_column: str  # canonical column receiving the value

    @model_validator(mode="after")
    def _one_way(self) -> Unpivot:
        if bool(self.columns) == bool(self.header_pattern):
            raise ValueError("unpivot needs either `columns` or `header_pattern`, not both")
        if self.header_pattern:
            re.compile(self.header_pattern)
        return self

    def names(self, headers: list[str]) -> dict[str, str]:
        """The file's unpivoted headers, each with its name."""
        if self.columns:
            return {h: n for h, n in self.columns.items() if h in headers}
        pattern = re.compile(self.header_pattern or "")
        found = {}
        for header in headers:
            match = pattern.fullmatch(header)
            if match:
                found[header] = match.groupdict().get("name") or header
        return found


class Duplicates(_Strict):
    """Rows repeated inside one file. `key`: the canonical columns naming a case (by
    default the table's identifier, e.g. case_id, with the unpivot's name column).
    `identical`: the second and later copies of a row are quarantined ("与第 N 行重复"),
    or left to land so that the suite's uniqueness check blocks the month (`block`).
    `conflicts` (the same key, other content): every such row is quarantined with the
    others' lines, the last line of the key wins (`later_wins`), or `block`."""

    key: list[str] | None = None
    identical: Literal["quarantine", "block"] = "quarantine"
    conflicts: Literal["quarantine", "later_wins", "block"] = "quarantine"


# What a layout may set for itself; everything else is the source's (its table, file
# pattern, periods, limits, duplicates and deadlines are one per source).
LAYOUT_SETTINGS = (
    "format",
    "encoding",
    "delimiter",
    "sheet",
    "header_row",
    "columns",
    "constants",
    "unpivot",
    "title_values",
    "values",
    "date_formats",
    "timestamp_formats",
    "timezone",
    "serial_dates",
    "carry_down",
    "optional_columns",
    "notes_pattern",
    "missing_values",
)


class Layout(BaseModel):
    """One way a source's files are laid out: a name and the settings that differ from
    the mapping's own (the CSV and the XLSX export of one extract; display headers and
    API field names). Each file is read by the layout whose headers it holds most of."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(min_length=1)

    @model_validator(mode="after")
    def _only_layout_settings(self) -> Layout:
        unknown = sorted(set(self.model_extra or {}) - set(LAYOUT_SETTINGS))
        if unknown:
            raise ValueError(f"a layout may set only {', '.join(LAYOUT_SETTINGS)}; not {', '.join(unknown)}")
        return self

    @property
    def settings(self) -> dict:
        return dict(self.model_extra or {})


class ReadLimits(_Strict):
    """How large a file may be before it is refused rather than read: each bounds
    the memory reading takes, so that a hostile file cannot exhaust it."""

    # A longer field (its bytes as UTF-8) quarantines its row; a comment of a
    # million Chinese characters (3 MB) is still kept.
    max_field_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # A longer record (a line of many short fields) quarantines its row too: a
    # field limit alone would let a 500 MB line of "a,a,a,…" be held whole.
    max_record_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Per workbook (xlsx/xls), summed over its sheets. The workbook reader loads a
    # sheet whole, so these bound its memory: above either, the file is refused.
    max_workbook_rows: int = Field(default=1_048_576, ge=1)
    max_workbook_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)  # uncompressed sheet XML

    @model_validator(mode="after")
    def _record_holds_a_field(self) -> ReadLimits:
        if self.max_record_bytes < self.max_field_bytes:
            raise ValueError(
                f"max_record_bytes ({self.max_record_bytes:,}) is below max_field_bytes "
                f"({self.max_field_bytes:,}): a record holds its fields"
            )
        return self


class SourceMapping(_Strict):
    source: str
    description: str = ""
    file_pattern: str  # glob relative to the inbox, e.g. "service_transactions/好差评明细_*.csv"
    # Which period a file covers, from its name: groups year and month, year and quarter,
    # or year alone (a yearly file, filed under the year's first month).
    period_pattern: str = r"(?P<year>\d{4})-?(?P<month>\d{2})"
    # For a file that is one period's edition with no date in its name: that period.
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    format: Literal["csv", "xlsx", "xls"]
    encoding: str = "auto"
    # csv: the character between fields, or `auto`: the first of comma, tab, semicolon and
    # pipe with which the header is found. Names (comma, tab, semicolon, pipe) are taken too.
    delimiter: Literal["auto", ",", "\t", ";", "|"] = "auto"
    sheet: str | int | None = None  # xlsx/xls: sheet name or 0-based index; default: first with the header
    header_row: int | Literal["auto"] = "auto"  # 1-based; auto = first row holding all mapped headers
    # canonical column -> source header, or several (aliases: display headers and API
    # field names, old and new spellings); a file's own header row says which it uses.
    columns: dict[str, str | list[str]]
    # Mapped columns a file may lack (older extracts without 评价时间): where the
    # header has none of the column's headers, the column is empty (NULL) for that file.
    optional_columns: list[str] = []
    constants: dict[str, str] = {}  # canonical column -> fixed value for every row
    unpivot: Unpivot | None = None
    # Values read from the title lines above the header (a statistical export's
    # "指标：地区生产总值(亿元)"): canonical column -> pattern with a `value` group.
    title_values: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}  # canonical column -> {source value: canonical value}
    # Numbers written as text in date and timestamp columns (a CSV, or a workbook's text
    # cells) are Excel serial dates, 1900 system. A workbook's number cells in those
    # columns are always read as serial dates, by its own date1904 flag.
    serial_dates: bool = False
    # Tried after ISO 8601 (with T, fractions and a zone: see `timezone`). Day-first and
    # month-first forms (05/03/2026) are ambiguous: never defaults, declared when used.
    date_formats: list[str] = DEFAULT_DATE_FORMATS
    timestamp_formats: list[str] = DEFAULT_TIMESTAMP_FORMATS
    # A timestamp written with its zone (2026-03-05T01:30:00Z, …+08:00) is converted to
    # this zone's local time, in which every other timestamp is taken to be written.
    timezone: str = "Asia/Shanghai"
    missing_values: list[str] = DEFAULT_PLACEHOLDERS
    notes_pattern: str = DEFAULT_NOTES
    submission_deadline_day: int = Field(default=5, ge=1, le=28)  # of the month after the period
    max_quarantine_share: float = Field(default=0.05, ge=0, le=1)  # above it the file fails the gate
    limits: ReadLimits = ReadLimits()
    duplicates: Duplicates = Duplicates()
    # Canonical columns whose label is written once, blank beneath it for the rows it
    # covers: a blank cell takes the value of the nearest filled one above it.
    carry_down: list[str] = []
    # When a case counts as closed, for a table with a close time (service transactions):
    # `close_time`, when it has one, whatever its status; `status`, only when its status
    # (after `values`) is closed, and such a row without a close time is quarantined.
    closed_when: Literal["close_time", "status"] = "close_time"
    # Several layouts of one source's files (see Layout); none: the mapping is the one layout.
    layouts: list[Layout] = []

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter_by_name(cls, value: object) -> object:
        names = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
        return names.get(value, value) if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)") from None
        return value

    @field_validator("columns", mode="after")
    @classmethod
    def _headers_without_spaces(cls, columns: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        # Readers compare headers with all whitespace removed; so does the mapping.
        def bare(header: str) -> str:
            return re.sub(r"\s+", "", header)

        cleaned: dict[str, str | list[str]] = {}
        for canonical, headers in columns.items():
            if isinstance(headers, list):
                if not headers:
                    raise ValueError(f"columns.{canonical}: an empty list of headers")
                cleaned[canonical] = [bare(h) for h in headers] if len(headers) > 1 else bare(headers[0])
            else:
                cleaned[canonical] = bare(headers)
        return cleaned

    @model_validator(mode="after")
    def _fits_canonical(self) -> SourceMapping:
        if self.source not in CANONICAL:
            raise ValueError(f"source {self.source!r} is not a canonical table; known: {sorted(CANONICAL)}")
        table = self.table
        known = {c.name for c in table.columns}
        fed = set(self.columns) | set(self.constants) | set(self.title_values)
        if self.unpivot:
            fed |= {self.unpivot.name_column, self.unpivot.value_column}
        unknown = sorted(fed - known)
        if unknown:
            raise ValueError(f"columns {unknown} are not in canonical table {self.source}; known: {sorted(known)}")
        missing = sorted(c.name for c in table.columns if c.required and c.name not in fed)
        if missing:
            raise ValueError(f"required canonical columns not mapped: {missing}")
        for column, pattern in self.title_values.items():
            if "value" not in re.compile(pattern).groupindex:
                raise ValueError(f"title_values.{column}: the pattern needs a group named `value`")
        for column in self.optional_columns:
            if column not in self.columns:
                raise ValueError(
                    f"optional_columns: {column!r} is not a mapped column (columns: {sorted(self.columns)})"
                )
            if table.column(column).required:
                raise ValueError(f"optional_columns: {column!r} is required in canonical table {self.source}")
        for column in self.carry_down:
            if column not in self.columns:
                raise ValueError(f"carry_down: {column!r} is not a mapped column (columns: {sorted(self.columns)})")
        for column in self.duplicate_key:
            if column not in known:
                raise ValueError(f"duplicates.key: {column!r} is not in canonical table {self.source}")
        if self.closed_when == "status":
            if table.closed_time is None:
                raise ValueError(f"closed_when: status: {self.source} has no close time for a case to be closed by")
            if "status" not in fed:
                raise ValueError("closed_when: status needs the status column mapped (columns.status)")
        for column in self.values:
            if column not in fed:
                raise ValueError(f"values given for {column!r}, which is not mapped")
        groups = set(re.compile(self.period_pattern).groupindex)
        if "year" not in groups or {"month", "quarter"} <= groups:
            raise ValueError(
                "period_pattern needs a named group year, with month or quarter or neither (a yearly file)"
            )
        return self

    @model_validator(mode="after")
    def _layouts_valid(self) -> SourceMapping:
        names = [layout.name for layout in self.layouts]
        if len(set(names)) != len(names):
            raise ValueError(f"layouts: names repeat ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
        for index, layout in enumerate(self.layouts):
            try:
                self._with(layout)
            except ValueError as error:  # pydantic's ValidationError is a ValueError
                raise ValueError(f"layouts[{index}] ({layout.name}): {error}") from None
        return self

    def _with(self, layout: Layout) -> SourceMapping:
        return SourceMapping.model_validate(self.model_dump(exclude={"layouts"}) | layout.settings)

    def layout_mappings(self) -> list[tuple[str, SourceMapping]]:
        """Each layout's name and the mapping it reads with (the mapping alone, named
        `default`, when it declares no layouts)."""
        if not self.layouts:
            return [("default", self)]
        return [(layout.name, self._with(layout)) for layout in self.layouts]

    @property
    def table(self) -> CanonicalTable:
        return CANONICAL[self.source]

    @property
    def duplicate_key(self) -> list[str]:
        """The canonical columns naming a case, for the duplicates rule."""
        if self.duplicates.key is not None:
            return self.duplicates.key
        key = [c.name for c in self.table.columns if c.identifier]
        return key + ([self.unpivot.name_column] if self.unpivot and key else [])

    @property
    def header_groups(self) -> list[list[str]]:
        """What the file's header must hold: per mapped column its header or one of its
        aliases, and each of the unpivot's named columns."""
        groups = [
            headers if isinstance(headers, list) else [headers]
            for canonical, headers in self.columns.items()
            if canonical not in self.optional_columns
        ]
        if self.unpivot:
            groups += [[header] for header in self.unpivot.columns]
        return groups

    def resolved(self, headers: list[str]) -> SourceMapping:
        """This mapping with each column's header the one of its aliases that `headers`
        (a file's header row) holds: every later step sees one header per column. An
        optional column the file lacks is dropped: it is not mapped for this file."""
        present = set(headers)
        chosen = {
            canonical: next((h for h in options if h in present), options[0]) if isinstance(options, list) else options
            for canonical, options in self.columns.items()
            if canonical not in self.optional_columns
            or any(h in present for h in (options if isinstance(options, list) else [options]))
        }
        return self if chosen == self.columns else self.model_copy(update={"columns": chosen})

    @property
    def months_per_period(self) -> int:
        """How many months a file covers: 1, 3 when the pattern names a quarter, 12 when
        it names a year alone (`…-2018.csv`)."""
        groups = re.compile(self.period_pattern).groupindex
        return 1 if "month" in groups else 3 if "quarter" in groups else 12

    def is_period_start(self, month: dt.date) -> bool:
        """A file covering several months is filed under its first: a quarter's, a year's."""
        return (month.month - 1) % self.months_per_period == 0

    def period_of(self, file_name: str) -> dt.date | None:
        """First day of the period a file covers, from its name; None if the name has none."""
        if self.period:
            return dt.date.fromisoformat(f"{self.period}-01")
        match = re.search(self.period_pattern, file_name)
        if not match:
            return None
        parts = match.groupdict()
        year = int(parts["year"])
        if self.months_per_period == 1:
            if not parts.get("month"):
                return None  # an optional month group that did not match: no month named
            month = int(parts["month"])
        elif self.months_per_period == 3:
            if not parts.get("quarter"):
                return None
            month = 3 * (int(parts["quarter"]) - 1) + 1
        else:
            month = 1  # a yearly file
        if not 1 <= month <= 12:
            return None
        return dt.date(year, month, 1)


def load_mapping(path: Path) -> SourceMapping:
    return load_yaml_model(path, SourceMapping)  # type: ignore[return-value]


def load_mappings(mappings_dir: Path) -> dict[str, SourceMapping]:
    """Every mapping file, keyed by source. Two files for one source is an error."""
    mappings: dict[str, SourceMapping] = {}
    for path in sorted(mappings_dir.glob("*.yaml")):
        mapping = load_mapping(path)
        if mapping.source in mappings:
            raise ConfigError(f"{path}: a second mapping for source {mapping.source!r}")
        mappings[mapping.source] = mapping
    if not mappings:
        raise ConfigError(f"{mappings_dir}: no mapping files (*.yaml)")
    return mappings
