"""The canonical tables every extract is mapped onto.

This is the contract between ingest and dbt staging: a mapping file says which
source column feeds which canonical column; this module says what each canonical
column must hold and which row rules make a row unusable (and so quarantined).
Rules are SQL over already typed columns and name the column they are about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "integer", "number", "date", "timestamp", "boolean"]

DUCKDB_TYPES: dict[ColumnType, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    # Allowed canonical values (after the mapping's value map), for coded columns.
    allowed: tuple[str, ...] = ()
    # Holds a department reference (id or name) to resolve against the registry.
    department: bool = False
    # False for published statistics (aggregates, never about one person): a GDP
    # of 15,234,567,890 must not be mistaken for a mobile number and masked.
    personal: bool = True
    # Identifies a record (a case, a ticket): it must stay unique and joinable, so
    # personal data found in it is masked by a keyed hash, not a fixed token.
    identifier: bool = False
    # Not read from the extract: the keywords of this free-text column's masked
    # text (pipelines/ingest/keywords.py), joined by ','.
    keywords_of: str | None = None
    # Not read from the extract: whether the case is closed, by the mapping's
    # `closed_when` rule (a close time, or a closed status); see cleaning.closed_sql.
    closed_flag: bool = False


@dataclass(frozen=True)
class RowRule:
    column: str
    # True when the row is valid; NULLs count as valid (required is separate).
    # {delivered_at} stands for the time the file was delivered.
    sql: str
    reason: str  # what a person can act on


@dataclass(frozen=True)
class CanonicalTable:
    name: str
    columns: tuple[Column, ...]
    # The column whose date decides which month a row is about, for the
    # department-in-office check and the gate's completeness check.
    activity_date: str | None = None
    rules: tuple[RowRule, ...] = field(default_factory=tuple)
    # A resubmission replaces a department's rows for the period; where files
    # carry different series for the same departments (a yearbook's tables), a
    # slice is the department and this column.
    slice_column: str | None = None
    # The column holding the time a case was closed, where the table has a closed
    # flag (Column.closed_flag) decided by the mapping's `closed_when`.
    closed_time: str | None = None

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


# No event can postdate the file that reports it.
FUTURE = "日期晚于文件报送时间，是未来日期 (a date after the file was delivered: in the future)"

DEPARTMENT = Column("department_id", "string", required=True, department=True)

CANONICAL: dict[str, CanonicalTable] = {
    t.name: t
    for t in [
        CanonicalTable(
            "service_transactions",
            (
                Column("case_id", "string", required=True, identifier=True),
                DEPARTMENT,
                Column("service_item", "string", required=True),
                # `unknown`: the extract does not say (UNKNOWN, OTHER). The online rate
                # leaves such cases out of its denominator and reports them (n_unknown).
                Column("channel", "string", required=True, allowed=("online", "offline", "unknown")),
                Column("received_at", "timestamp", required=True),
                Column("completed_at", "timestamp"),
                # The deadline: a statutory limit in working days, or a due time
                # (311-style extracts); a case with neither is not judged on time.
                Column("time_limit_days", "integer"),
                Column("due_at", "timestamp"),
                # closed / open / duplicate / transferred / not_a_case. Duplicate,
                # transferred and not_a_case requests (cancelled, withdrawn, a test
                # entry) are not cases of the department: no indicator counts them.
                Column("status", "string", allowed=("closed", "open", "duplicate", "transferred", "not_a_case")),
                Column("materials_required", "integer"),
                Column("materials_submitted", "integer"),
                Column("rating", "integer"),
                # When the citizen rated (optional): the rating-gaming screens look for
                # ratings entered within seconds of completion or in bursts.
                Column("rated_at", "timestamp"),
                Column("comment", "string"),
                Column("comment_keywords", "string", keywords_of="comment"),
                Column("rectified", "boolean"),
                Column("rectified_at", "timestamp"),
                Column("appealed", "boolean"),
                Column("appeal_upheld", "boolean"),
                Column("is_closed", "boolean", closed_flag=True),
            ),
            activity_date="received_at",
            closed_time="completed_at",
            rules=(
                RowRule("received_at", "received_at <= {delivered_at}", FUTURE),
                RowRule("rating", "rating between 1 and 5", "评价等级超出1-5范围 (rating out of range 1-5)"),
                RowRule(
                    "completed_at", "completed_at >= received_at", "办结时间早于受理时间 (completed before received)"
                ),
                RowRule("rated_at", "rated_at <= {delivered_at}", FUTURE),
                RowRule("rated_at", "rated_at >= received_at", "评价时间早于受理时间 (rated before received)"),
                RowRule("time_limit_days", "time_limit_days >= 0", "承诺时限为负数 (negative time limit)"),
                RowRule(
                    "materials_submitted",
                    "materials_submitted between 0 and materials_required",
                    "实交材料数不在0与应交材料数之间 (materials submitted outside 0..required)",
                ),
            ),
        ),
        CanonicalTable(
            "hotline_complaints",
            (
                Column("ticket_id", "string", required=True, identifier=True),
                DEPARTMENT,
                Column("received_at", "timestamp", required=True),
                Column("closed_at", "timestamp"),
                Column("category", "string"),
                Column("substantiated", "boolean", required=True),
                Column("content", "string"),
            ),
            activity_date="received_at",
            rules=(
                RowRule("received_at", "received_at <= {delivered_at}", FUTURE),
                RowRule("closed_at", "closed_at >= received_at", "办结时间早于受理时间 (closed before received)"),
            ),
        ),
        CanonicalTable(
            "survey_responses",
            (
                Column("response_id", "string", required=True, identifier=True),
                DEPARTMENT,
                Column("responded_on", "date", required=True),
                Column("question", "string", required=True),
                Column("score", "number"),
                Column("comment", "string"),
                Column("comment_keywords", "string", keywords_of="comment"),
            ),
            activity_date="responded_on",
            rules=(
                RowRule("responded_on", "responded_on <= cast({delivered_at} as date)", FUTURE),
                RowRule("score", "score between 0 and 100", "问卷得分超出0-100范围 (score out of range 0-100)"),
            ),
        ),
        CanonicalTable(
            "leader_reviews",
            (
                DEPARTMENT,
                Column("year", "integer", required=True),
                Column("quarter", "integer", required=True),
                Column("score", "number", required=True),
                Column("remarks", "string"),
            ),
            rules=(
                RowRule("quarter", "quarter between 1 and 4", "季度不在1-4之间 (quarter not 1-4)"),
                RowRule("score", "score between 0 and 100", "评分超出0-100范围 (score out of range 0-100)"),
            ),
        ),
        CanonicalTable(
            "budget_execution",
            (
                DEPARTMENT,
                Column("month", "date", required=True),
                Column("planned_amount", "number", required=True),
                Column("actual_amount", "number", required=True),
            ),
            activity_date="month",
            rules=(
                RowRule("planned_amount", "planned_amount >= 0", "预算数为负数 (negative planned amount)"),
                RowRule("actual_amount", "actual_amount >= 0", "执行数为负数 (negative actual amount)"),
            ),
        ),
        CanonicalTable(
            "key_projects",
            (
                Column("project_id", "string", required=True, identifier=True),
                DEPARTMENT,
                Column("project_name", "string"),
                Column("milestone", "string", required=True),
                Column("planned_on", "date", required=True),
                Column("completed_on", "date"),
            ),
            activity_date="planned_on",
        ),
        # Indicator values a department or an outside body computed itself (a
        # published index, a statistical yearbook), and the series that divide
        # them (population, GDP). Long form: one row per unit and indicator; a
        # missing value is a row with no value, so imputation can see the gap.
        CanonicalTable(
            "indicator_observations",
            (
                DEPARTMENT,
                Column("indicator_id", "string", required=True),
                Column("value", "number", personal=False),
                Column("n_obs", "integer", personal=False),
                # The period a value is about, when one file holds several (a
                # yearbook's year columns: a year is dated at its first month);
                # otherwise the file's period.
                Column("period", "date"),
            ),
            rules=(RowRule("n_obs", "n_obs >= 0", "观测数为负数 (negative number of observations)"),),
            slice_column="indicator_id",
        ),
        CanonicalTable(
            "adjustments",
            (
                DEPARTMENT,
                Column("kind", "string", required=True, allowed=("bonus", "penalty", "veto")),
                Column("points", "number"),
                Column("reason", "string", required=True),
                Column("evidence_ref", "string"),
            ),
            rules=(
                RowRule(
                    "points",
                    "(kind = 'bonus' and points > 0) or (kind = 'penalty' and points < 0) or kind = 'veto'",
                    "加分须为正、减分须为负 (bonus must be positive, penalty negative)",
                ),
            ),
        ),
    ]
}
