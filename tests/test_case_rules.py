"""The case rules a mapping states for service transactions (docs/ingest.md,
"Closed enumerations"): an explicit unknown channel, "not a case" as a status of
its own, and when a case counts as closed (`closed_when`). What dbt then does
with them is in dbt_project/models/intermediate/_unit_tests__cases.yml.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.mapping import SourceMapping
from pipelines.reference import ConfigError, load_yaml_model
from tests.test_ingest_landing import GOOD, HEADER, MAPPINGS, _land_with

WITH_STATUS = {
    "columns": MAPPINGS["service_transactions"].columns | {"status": "办件状态"},
    "values": MAPPINGS["service_transactions"].values
    | {
        "channel": {"网办": "online", "窗口": "offline", "UNKNOWN": "unknown", "OTHER": "unknown"},
        "status": {"已办结": "closed", "办理中": "open", "已撤销": "not_a_case", "重复件": "duplicate"},
    },
}


def _extract(rows: list[tuple[str, str, str, str]]) -> bytes:
    """Rows of (case id, channel, close time, status) on the sample's good row."""
    lines = [HEADER + ",办件状态"]
    for case, channel, closed, status in rows:
        row = GOOD.replace("SX1,", f"{case},").replace(",网办,", f",{channel},")
        row = row.replace("2025-03-04 10:00:00", closed)
        lines.append(f"{row},{status}")
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def _landed(tmp_path: Path) -> dict[str, tuple]:
    rows = duckdb.sql(
        f"select case_id, channel, status, completed_at is not null, is_closed "
        f"from '{tmp_path}/lake/service_transactions/*/*.parquet'"
    ).fetchall()
    return {case: rest for case, *rest in rows}


def test_an_unknown_channel_and_a_request_that_is_not_a_case_land_as_such(tmp_path: Path) -> None:
    landing, quarantine = _land_with(
        tmp_path,
        _extract(
            [
                ("S1", "UNKNOWN", "2025-03-04 10:00:00", "已办结"),
                ("S2", "OTHER", "2025-03-04 10:00:00", "已办结"),
                ("S3", "网办", "", "已撤销"),
                ("S4", "邮寄", "2025-03-04 10:00:00", "已办结"),
            ]
        ),
        WITH_STATUS,
    )
    assert (landing.rows_read, landing.rows_accepted, landing.rows_quarantined) == (4, 3, 1)
    landed = _landed(tmp_path)
    assert landed["S1"][:2] == ["unknown", "closed"] and landed["S2"][0] == "unknown"
    assert landed["S3"][1] == "not_a_case"
    # a channel the mapping does not name is still an error of the extract, not an unknown
    assert "邮寄" in quarantine[0][2] and "online/offline/unknown" in quarantine[0][2]


ROWS = [
    ("C1", "网办", "2025-03-04 10:00:00", "已办结"),  # closed both ways
    ("C2", "网办", "2025-03-04 10:00:00", "办理中"),  # a close time, its status still open
    ("C3", "网办", "", "办理中"),  # open both ways
    ("C4", "网办", "", "已办结"),  # a closed status without a close time
]


@pytest.mark.parametrize(
    ("closed_when", "closed", "quarantined"),
    [
        ("close_time", {"C1": True, "C2": True, "C3": False, "C4": False}, []),
        ("status", {"C1": True, "C2": False, "C3": False}, ["C4"]),
    ],
)
def test_a_case_is_closed_by_the_rule_its_mapping_names(
    tmp_path: Path, closed_when: str, closed: dict[str, bool], quarantined: list[str]
) -> None:
    changes = WITH_STATUS | ({"closed_when": closed_when} if closed_when != "close_time" else {})
    landing, quarantine = _land_with(tmp_path, _extract(ROWS), changes)
    assert landing.rows_read == landing.rows_accepted + landing.rows_quarantined == 4
    assert {case: rest[3] for case, rest in _landed(tmp_path).items()} == closed
    assert [raw.split(",")[0] for _, raw, _ in quarantine] == quarantined
    for _, _, reason in quarantine:
        assert "status closed without a close time" in reason
    # the close time the extract gave is kept either way
    assert _landed(tmp_path)["C2"][2] is True


def test_closed_when_status_needs_the_status_column(tmp_path: Path) -> None:
    path = tmp_path / "service_transactions.yaml"
    path.write_text(
        "source: service_transactions\nformat: csv\nfile_pattern: 'x/*.csv'\nclosed_when: status\n"
        "columns: {case_id: a, department_id: b, service_item: c, channel: d, received_at: e}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"service_transactions.yaml.*closed_when: status needs the status column"):
        load_yaml_model(path, SourceMapping)


def test_closed_when_is_refused_where_a_case_has_no_close_time(tmp_path: Path) -> None:
    path = tmp_path / "survey.yaml"
    path.write_text(
        "source: survey_responses\nformat: csv\nfile_pattern: 'x/*.csv'\nclosed_when: status\n"
        "columns: {response_id: a, department_id: b, responded_on: c, question: d}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="survey_responses has no close time"):
        load_yaml_model(path, SourceMapping)
