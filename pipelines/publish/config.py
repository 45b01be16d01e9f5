"""What is published: editions (a month, a quarter or a year) and the bulletin settings.

An edition is named by its period key, 2026-03 for a month, 2026-Q1 for a quarter
and 2025 for the year (年度绩效考核); the CLI, file names and the archive use that key.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipelines.reference import _Strict, load_yaml_model

PERIOD_FOLDERS = {"month": "monthly", "quarter": "quarterly", "year": "annual"}
MONTHS_IN = {"month": 1, "quarter": 3, "year": 12}
QUARTER_NAMES = "一二三四"


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def editions_of(months: list[dt.date]) -> list[Edition]:
    """The editions a run over `months` renders: each month, each quarter whose last
    month it contains (a quarter is scored by the run of its last month), and each
    year whose December it contains."""
    editions = [Edition.month(month) for month in months]
    editions += [Edition.quarter_of(month) for month in months if month.month % 3 == 0]
    editions += [Edition.year_of(month) for month in months if month.month == 12]
    return editions


@dataclass(frozen=True, order=True)
class Edition:
    """A bulletin's period: `period` is its first day, `period_type` month, quarter or year."""

    period_type: Literal["month", "quarter", "year"]
    period: dt.date

    def __post_init__(self) -> None:
        if self.period_type not in PERIOD_FOLDERS:
            raise ValueError(f"period_type must be month, quarter or year, got {self.period_type!r}")
        if self.period.day != 1 or (self.period.month - 1) % self.months:
            raise ValueError(f"{self.period.isoformat()} is not the first day of a {self.period_type}")

    @classmethod
    def parse(cls, text: str) -> Edition:
        """'2026-03' (a month), '2026-Q1' (a quarter) or '2025' (a year)."""
        text = text.strip()
        if re.fullmatch(r"\d{4}", text):
            return cls("year", dt.date(int(text), 1, 1))
        if match := re.fullmatch(r"(\d{4})-Q([1-4])", text, flags=re.IGNORECASE):
            return cls("quarter", dt.date(int(match[1]), 3 * int(match[2]) - 2, 1))
        if match := re.fullmatch(r"(\d{4})-(\d{2})", text):
            if 1 <= int(match[2]) <= 12:
                return cls("month", dt.date(int(match[1]), int(match[2]), 1))
        raise ValueError(
            f"{text!r} is not a period: write YYYY-MM for a month, YYYY-Qn for a quarter or YYYY for a year"
        )

    @classmethod
    def month(cls, day: dt.date) -> Edition:
        return cls("month", day.replace(day=1))

    @classmethod
    def quarter_of(cls, day: dt.date) -> Edition:
        return cls("quarter", dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1))

    @classmethod
    def year_of(cls, day: dt.date) -> Edition:
        return cls("year", dt.date(day.year, 1, 1))

    def holds_appeal(self, period_type: str, period: dt.date) -> bool:
        """Whether an appeal about (period_type, period) is this edition's: one about a
        month of it, or an edition's own about its whole period (edition_rows.APPEALS_OF_EDITION)."""
        return self.period <= period <= self.last_month and (period_type == "month" or period_type == self.period_type)

    @property
    def months(self) -> int:
        return MONTHS_IN[self.period_type]

    @property
    def key(self) -> str:
        if self.period_type == "month":
            return f"{self.period:%Y-%m}"
        if self.period_type == "year":
            return f"{self.period.year}"
        return f"{self.period.year}-Q{(self.period.month + 2) // 3}"

    @property
    def label(self) -> str:
        if self.period_type == "month":
            return f"{self.period.year}年{self.period.month}月"
        if self.period_type == "year":
            return f"{self.period.year}年度"
        return f"{self.period.year}年第{QUARTER_NAMES[(self.period.month - 1) // 3]}季度"

    @property
    def kind_label(self) -> str:
        return {"month": "月度", "quarter": "季度", "year": "年度"}[self.period_type]

    @property
    def folder(self) -> str:
        """monthly, quarterly or annual: where drafts and published editions of this kind go."""
        return PERIOD_FOLDERS[self.period_type]

    @property
    def stem(self) -> str:
        return f"bulletin_{self.key}"

    @property
    def last_month(self) -> dt.date:
        return _add_months(self.period, self.months - 1)

    @property
    def end(self) -> dt.date:
        last = self.last_month
        return last.replace(day=calendar.monthrange(last.year, last.month)[1])

    @property
    def previous(self) -> Edition:
        return Edition(self.period_type, _add_months(self.period, -self.months))

    @property
    def year_ago(self) -> Edition:
        """The same period a year earlier (同比)."""
        return Edition(self.period_type, _add_months(self.period, -12))

    def trend_months(self, count: int) -> list[dt.date]:
        """The `count` months up to and including the edition's last month."""
        return [_add_months(self.last_month, -offset) for offset in range(count - 1, -1, -1)]


# A baseline rule instead of a fixed period: the first month (quarter) of the edition's
# own year, so that each edition says how far the year has come (较年初).
YEAR_START = "year_start"


class Baseline(_Strict):
    """基期 of monthly and quarterly editions: a fixed period (2025-01, 2025-Q1) or
    `year_start`."""

    month: str
    quarter: str

    @field_validator("month", "quarter")
    @classmethod
    def _is_period_of_its_kind(cls, value: str, info: ValidationInfo) -> str:
        if str(value) == YEAR_START:
            return YEAR_START
        try:
            period_type = Edition.parse(str(value)).period_type
        except ValueError:
            period_type = None
        if period_type != info.field_name:
            raise ValueError(
                f"{value!r} is neither {YEAR_START} nor a {info.field_name} "
                f"({'YYYY-MM' if info.field_name == 'month' else 'YYYY-Qn'})"
            )
        return str(value)

    def for_edition(self, edition: Edition) -> Edition | None:
        """The edition's baseline; None when it would be the edition itself (January
        against the start of its own year, and a year: an annual edition compares with
        the year before)."""
        if edition.period_type == "year":
            return None
        rule = self.month if edition.period_type == "month" else self.quarter
        if rule == YEAR_START:
            baseline = Edition(edition.period_type, edition.period.replace(month=1))
        else:
            baseline = Edition.parse(rule)
        return None if baseline == edition else baseline


class CitizenVoice(_Strict):
    indicators: list[str] = []
    themes: int = Field(10, ge=1, le=50)
    # The `lowest` departments on this indicator are named (the highest, where lower is better).
    lowest_by: str | None = None
    lowest: int = Field(5, ge=1, le=50)
    # A department is named on that list only with at least this many observations
    # (cases, responses) behind its value, on top of the indicator's own min_obs: a
    # good-review rate from 3 cases says little. The list says how many were left out.
    min_sample: int = Field(30, ge=1)
    # Comment sentiment (fct_comment_sentiment): a department is named as a point to look
    # into when its negative share is above the other departments' by a one-sided binomial
    # test, Benjamini-Hochberg controlled at this false-discovery rate across departments,
    # and it has at least this many scored comments.
    sentiment_fdr: float = Field(0.05, gt=0, lt=1)
    sentiment_min_comments: int = Field(30, ge=1)


class RatingScreens(_Strict):
    # The rating-gaming screens (marts.fct_anomalies) name departments: where their
    # flags appear. `annex`: only in the draft edition's internal annex (internal/疑点核查.html,
    # linked from no page, never in a published revision; the edition says how many); `edition`: in
    # the edition and on the department pages as well.
    show: Literal["annex", "edition"] = "annex"


class Forecasts(_Strict):
    # Forecasts of target attainment (marts.fct_target_forecasts): a department-indicator
    # pair is listed as at risk when its probability of meeting the target is below
    # `at_risk_below`; those meeting it today are all listed, then at most `listed` others,
    # least likely first (the department pages show every forecast).
    at_risk_below: float = Field(0.5, gt=0, lt=1)
    listed: int = Field(20, ge=1, le=500)


class Appeals(_Strict):
    # 申诉复核 (pipelines/appeals): appeals are filed up to the end of this many working
    # days after an edition's first draft, and the edition is approved only after them.
    window_working_days: int = Field(5, ge=0, le=60)


class QuarterlySchedule(_Strict):
    # After the 8th, when the monthly scoring of the quarter's last month runs.
    day: int = Field(20, ge=9, le=28)
    hour: int = Field(9, ge=0, le=23)


class AnnualSchedule(_Strict):
    # 年度绩效考核: the year's December is scored and drafted again, annual edition
    # included, on this day of the following year (after the monthly run of the 8th,
    # when year-end files such as the 民主测评 are in).
    month: int = Field(1, ge=1, le=3)
    day: int = Field(25, ge=9, le=28)
    hour: int = Field(9, ge=0, le=23)


# Ends a recipient's name or a prefix where the template adds its own punctuation.
_PUNCTUATION = "，,、；;：:。."


class OfficialForm(_Strict):
    """公文格式: an edition laid out as an official document after GB/T 9704 (docs/bulletin_form.md).
    Off by default: without it an edition has its plain header."""

    enabled: bool = False
    # 发文机关标志 (红头), the issuing body's name in red, e.g. 市政府绩效管理办公室文件.
    masthead: str = ""
    main_recipients: list[str] = []  # 主送机关, under the title
    copy_to: list[str] = []  # 抄送机关, in the 版记 at the end
    signatory: str = ""  # 发文机关署名 of the 落款
    # 成文日期 in the 落款: chinese 二〇二六年四月二十日, or arabic 2026年4月20日 (what GB/T 9704-2012 prescribes).
    date_numerals: Literal["chinese", "arabic"] = "chinese"

    @field_validator("masthead", "signatory")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if any(ch in value for ch in "\n\r\t"):
            raise ValueError("must be one line")
        if len(value) > 40:
            raise ValueError(f"{len(value)} characters; at most 40 fit the page")
        return value

    @field_validator("main_recipients", "copy_to")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        for name in names:
            if not name or name[-1] in _PUNCTUATION or "\n" in name:
                raise ValueError(f"{name!r}: a body's name, without punctuation (the lines add their own)")
        if len(set(names)) != len(names):
            raise ValueError(f"a name is listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        return names

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> OfficialForm:
        missing = [name for name in ("masthead", "signatory") if self.enabled and not getattr(self, name)]
        if missing:
            raise ValueError(f"enabled, but {', '.join(missing)} not set")
        return self


class DocumentNumber(_Strict):
    """文号: the number each published edition is issued under, e.g. 绩效办〔2026〕3号.
    `n` counts the editions first published in `year` (the year of the approval), from 1;
    see pipelines/publish/document_numbers.py for how a number is allocated."""

    prefix: str = Field("", max_length=40)  # the issuer's abbreviation (机关代字), e.g. 绩效办
    format: str = "{prefix}〔{year}〕{n}号"

    @field_validator("prefix")
    @classmethod
    def _prefix_only(cls, value: str) -> str:
        value = value.strip()
        if any(ch in value for ch in "〔〕[]［］()（）号\n") or any(ch.isdigit() for ch in value):
            raise ValueError(f"{value!r}: write the 机关代字 alone (绩效办); the year and number are added")
        return value

    @field_validator("format")
    @classmethod
    def _names_year_and_number(cls, value: str) -> str:
        names = {name for _text, name, _spec, _conversion in string.Formatter().parse(value) if name is not None}
        if not {"year", "n"} <= names or not names <= {"prefix", "year", "n"}:
            raise ValueError(
                f"{value!r}: write the number with {{year}} and {{n}} (and {{prefix}}), e.g. {{prefix}}〔{{year}}〕{{n}}号"
            )
        try:
            value.format(prefix="绩效办", year=2026, n=1)
        except (ValueError, IndexError, KeyError) as error:
            raise ValueError(f"{value!r}: {error}") from None
        return value

    def number(self, year: int, n: int | str) -> str:
        return self.format.format(prefix=self.prefix, year=year, n=n)


class BulletinConfig(_Strict):
    """bulletin.yaml. Every field has a default, so a configuration without the file
    (an example, a new office) still gets its editions, without key figures."""

    title: str = Field("政府部门绩效通报", min_length=1)
    # The annual edition's: 2025年度 + this.
    annual_title: str = Field("绩效考核结果通报", min_length=1)
    issuer: str = ""
    baseline: Baseline | None = None
    headline: list[str] = []
    citizen_voice: CitizenVoice = CitizenVoice()
    rating_screens: RatingScreens = RatingScreens()
    forecasts: Forecasts = Forecasts()
    movers: int = Field(5, ge=1, le=50)
    # A rank-band chart shows at most this many departments: the first and last half
    # of the ranking (a province's thousands would make a chart metres tall). The
    # ranking table above it lists everyone's band.
    band_chart_departments: int = Field(80, ge=2, le=1000)
    trend_months: int = Field(12, ge=2, le=36)
    quarterly_schedule: QuarterlySchedule = QuarterlySchedule()
    annual_schedule: AnnualSchedule = AnnualSchedule()
    official_form: OfficialForm = OfficialForm()
    appeals: Appeals = Appeals()
    document_number: DocumentNumber = DocumentNumber()

    def baseline_of(self, edition: Edition) -> Edition | None:
        return self.baseline.for_edition(edition) if self.baseline else None


def load_bulletin_config(reference_dir: Path, check_catalogue: bool = False) -> BulletinConfig:
    """bulletin.yaml, validated (the defaults if there is none); with `check_catalogue`,
    its indicator ids must be ones some version of catalogue.yaml scores (a typo would
    silently drop a key figure)."""
    path = reference_dir / "bulletin.yaml"
    if not path.exists():
        return BulletinConfig()
    config: BulletinConfig = load_yaml_model(path, BulletinConfig)  # type: ignore[assignment]
    if check_catalogue:
        from pipelines.reference import AggregateNode, ConfigError, load_catalogue, walk

        known = {
            node.indicator
            for version in load_catalogue(reference_dir).versions
            for node, _parent, _level in walk(version.tree)
            if not isinstance(node, AggregateNode)
        }
        voice = config.citizen_voice
        for place, ids in (
            ("headline", config.headline),
            ("citizen_voice › indicators", voice.indicators),
            ("citizen_voice › lowest_by", [voice.lowest_by] if voice.lowest_by else []),
        ):
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ConfigError(
                    f"{reference_dir / 'bulletin.yaml'}: {place}: not in catalogue.yaml: {', '.join(unknown)}"
                )
    return config
