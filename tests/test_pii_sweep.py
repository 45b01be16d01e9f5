"""Personal data never lands (PRODUCT.md): plant an ID number, a mobile number, a
landline number and a personal name in every source, run the whole pipeline
through Dagster, and search everything the run wrote.

Planted: a valid 18-character ID number (correct ISO 7064 check digit), a mobile
number (plain and with spaces), a landline number with its area code, and a
sentence naming a person, in accepted rows of all seven sources and in rows that
are quarantined (a rating that is no level, a closing time before the receipt, a
quarter 5, an ID number in a count, a mobile number as a budget amount, a date
that is no date, a row with too few fields), so the quarantine's raw text carries
them too. Numbers go into every kind of field (identifiers, ordinary text,
numbers); the name into free text (comments, complaint content, remarks,
reasons) and quarantined rows.

Searched, for each planted string (the numbers also without separators):
- every column of every table and view in the warehouse, cast to text
  (staging, intermediate, history and marts);
- every column of every Parquet file in the lake (accepted rows, the quarantine,
  file loads, check results, the submission register, history);
- every file under the govperf home and DAGSTER_HOME, byte for byte, in UTF-8,
  GBK and JSON's \\u escapes: the Dagster run and event-log SQLite databases,
  compute logs, gate files, bulletins (the HTML output), the key and cache folders;
- the dbt logs and artefacts written during the run, and what the run printed.

Not searched: the archive's originals. Every accepted original file is archived
byte-exact under its SHA-256 as evidence, and is kept as delivered, personal data
included. The test checks that every file under the archive is such an original
(named by the hash of its bytes, identical to an inbox file), so nothing derived
from the data can hide there.

The test can fail the other way too: it checks that the planted rows were
ingested, and that where the personal data was, the masked token now is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from pipelines.ingest.masking import mask_free_text, mask_identifier
from pipelines.runner import failure_messages, launch
from pipelines.settings import DBT_PROJECT_DIR, settings

MONTH = "2025-07"
NAME = "王秀英"  # not in jieba's dictionary, so its cache under the home holds no copy of it
ID_NUMBER = "44030519880715661X"  # check digit X is correct (ISO 7064 MOD 11-2)
MOBILE = "13812345678"
MOBILE_SPACED = "139 8765 4321"
LANDLINE = "010-62345678"
SENTENCE = f"办事员{NAME}态度很好，电话{MOBILE}，身份证{ID_NUMBER}，座机{LANDLINE}"
MASKED_SENTENCE = "办事员[姓名]态度很好，电话[手机号]，身份证[身份证号]，座机[固话]"

SECRETS = [
    NAME,
    ID_NUMBER,
    ID_NUMBER[:17],
    MOBILE,
    MOBILE_SPACED,
    MOBILE_SPACED.replace(" ", ""),
    LANDLINE,
    LANDLINE.replace("-", ""),
]
# As stored in files: UTF-8, GBK, and escaped as JSON writes it (Dagster's event log).
NEEDLES = sorted(
    {s.encode(encoding) for s in SECRETS for encoding in ("utf-8", "gbk")}
    | {json.dumps(s)[1:-1].encode() for s in SECRETS}
)


# ------------------------------------------------------------------ planting


def _append_csv(path: Path, encoding: str, newline: str, lines: list[str]) -> None:
    mtime = path.stat().st_mtime  # the delivery time: keep it
    text = path.read_bytes().decode(encoding)
    if not text.endswith(("\n", "\r")):
        text += newline
    path.write_bytes((text + newline.join(lines) + newline).encode(encoding))
    os.utime(path, (mtime, mtime))


def _edit_workbook(path: Path, edit) -> None:
    mtime = path.stat().st_mtime
    workbook = load_workbook(path)
    edit(workbook)
    workbook.save(path)
    os.utime(path, (mtime, mtime))


def _plant(inbox: Path) -> None:
    yyyymm = MONTH.replace("-", "")
    day, next_day = f"{MONTH}-15 09:00:00", f"{MONTH}-16 09:00:00"
    dept = "市政务服务和数据管理局"

    _append_csv(
        inbox / "service_transactions" / f"好差评明细_{yyyymm}.csv",
        "gbk",
        "\r\n",
        [
            # accepted: a mobile number in the case number, a landline in the service item, all of it in the comment
            f"SX{MOBILE},D001,{dept},企业开办一件事（咨询{LANDLINE}）,网办,{day},{next_day},1,3,3,满意,{SENTENCE},,,,,",
            # quarantined: a rating that is no level
            f"SX{yyyymm}999991,D001,{dept},企业开办一件事,网办,{day},{next_day},1,3,3,很好,{SENTENCE},,,,,",
            # quarantined: an ID number as the number of materials
            f"SX{yyyymm}999992,D001,{dept},企业开办一件事,网办,{day},{next_day},1,{ID_NUMBER},3,满意,,,,,,",
            # quarantined: too few fields
            f"SX{yyyymm}999993,D001,{SENTENCE}",
        ],
    )
    _append_csv(
        inbox / "hotline_complaints" / f"12345工单_{yyyymm}.csv",
        "utf-8-sig",
        "\n",
        [
            f"GD{ID_NUMBER},{dept},{day},{next_day},投诉,属实,{SENTENCE}",
            f"GD{yyyymm}999991,{dept},{next_day},{day},投诉,属实,{SENTENCE}",  # closed before received
        ],
    )
    _append_csv(
        inbox / "projects" / f"重点项目_{yyyymm}.csv",
        "utf-8",
        "\n",
        [
            f"XM-{LANDLINE},D001,一网通办能力提升工程（联系电话{MOBILE_SPACED}）,需求调研完成,{MONTH}-20,",
            f"XM-D001-99,D001,{SENTENCE},需求调研完成,下周三,",  # no date
        ],
    )
    # Adjustments allow no quarantined row at all: accepted rows only.
    _append_csv(
        inbox / "adjustments" / f"加减分_{yyyymm}.csv",
        "gbk",
        "\n",
        [
            f"D001,加分,1,{SENTENCE},市政办〔2025〕{ID_NUMBER}号",
        ],
    )

    def surveys(workbook):
        sheet = workbook["问卷结果"]
        sheet.append([f"WJ{MOBILE_SPACED}", dept, f"{MONTH}-15", 90, 90, 90, 90, SENTENCE])
        sheet.append([f"WJ{yyyymm}99991", dept, f"{MONTH}-15", 150, 90, 90, 90, SENTENCE])  # score above 100

    def leader_reviews(workbook):
        sheet = workbook["领导点评"]
        row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "D001")
        row[5].value = SENTENCE
        sheet.append(["D001", dept, 2025, 5, 88.0, SENTENCE])  # quarter 5

    def budget(workbook):
        sheet = workbook["执行情况"]
        row = next(r for r in sheet.iter_rows(min_row=4) if r[0].value == "D001")
        row[1].value = f"{dept}（联系人{NAME}，电话{MOBILE}，身份证{ID_NUMBER}，座机{LANDLINE}）"  # a column not mapped
        last = next(r[0].row for r in sheet.iter_rows(min_row=4) if r[0].value is None)
        sheet.insert_rows(last)
        for column, value in enumerate(["D001", f"{dept}（联系人{NAME}）", "2025年7月", MOBILE, "100"], start=1):
            sheet.cell(row=last, column=column, value=value)  # a mobile number as the planned amount

    _edit_workbook(inbox / "surveys" / f"万人评机关_{yyyymm}.xlsx", surveys)
    _edit_workbook(inbox / "leader_reviews" / f"领导点评_{MONTH[:4]}Q3.xlsx", leader_reviews)
    _edit_workbook(inbox / "budget" / f"预算执行_{yyyymm}.xlsx", budget)


# ------------------------------------------------------------------ searching


def _like_any(column: str) -> str:
    return " or ".join(f"contains({column}, '{s}')" for s in SECRETS)


def _warehouse_leaks(path: Path) -> list[str]:
    """Every column of every table and view, cast to text."""
    leaks = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns order by all"
        ).fetchall()
        for schema, table, column in columns:
            value = f'cast("{column}" as varchar)'
            found = con.execute(f'select {value} from "{schema}"."{table}" where {_like_any(value)} limit 3').fetchall()
            leaks += [f"warehouse {schema}.{table}.{column}: {row[0][:120]}" for row in found]
    finally:
        con.close()
    return leaks


def _lake_leaks(lake: Path) -> list[str]:
    leaks = []
    files = sorted(lake.rglob("*.parquet"))
    assert files
    con = duckdb.connect()
    try:
        for path in files:
            names = [
                r[0]
                for r in con.execute(
                    "select name from parquet_schema(?) where num_children is null", [str(path)]
                ).fetchall()
            ]
            for name in names:
                value = f'cast("{name}" as varchar)'
                found = con.execute(
                    f"select {value} from read_parquet(?) where {_like_any(value)} limit 3", [str(path)]
                ).fetchall()
                leaks += [f"lake {path.relative_to(lake)} {name}: {row[0][:120]}" for row in found]
    finally:
        con.close()
    return leaks


def _byte_leaks(paths: list[Path], label: str) -> list[str]:
    leaks = []
    for path in paths:
        data = path.read_bytes()
        leaks += [f"{label} {path}: {needle.decode('utf-8', 'replace')!r}" for needle in NEEDLES if needle in data]
    return leaks


def _archived_originals(archive: Path, inbox: Path) -> set[Path]:
    """Every file under the archive, after checking that each is an original."""
    originals = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in inbox.rglob("*") if p.is_file()}
    archived = {p for p in archive.rglob("*") if p.is_file()}
    for path in archived:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.stem == digest, f"{path} is not named by its content's SHA-256"
        assert digest in originals, f"{path} is not an original extract from the inbox"
    return archived


# ------------------------------------------------------------------ the test


@pytest.mark.slow
def test_planted_personal_data_is_nowhere_after_a_full_run(govperf_home: Path, capfd, caplog, monkeypatch):
    monkeypatch.setenv("GOVPERF_CACHE", str(govperf_home / "cache"))  # swept with the home, not shared
    inbox = Path(os.environ["GOVPERF_INBOX"])
    _plant(inbox)
    started = time.time()

    caplog.set_level(logging.DEBUG)  # every log record of the run, at every level
    result = launch(MONTH)
    assert result.success, failure_messages(result)
    printed = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)

    s = settings()
    assert s.dagster_home.is_relative_to(s.home) and s.duckdb_path.is_relative_to(s.home)
    key_file = s.masking_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip().encode()

    # ---- the planted rows were ingested, and masked where the personal data was
    con = duckdb.connect()
    lake = s.lake.as_posix()

    def lake_rows(source: str, where: str) -> int:
        return con.execute(f"select count(*) from '{lake}/{source}/{MONTH}/*.parquet' where {where}").fetchall()[0][0]

    case_id = mask_identifier(f"SX{MOBILE}", key)
    assert case_id.startswith("SX[手机号#") and MOBILE not in case_id
    assert (
        lake_rows(
            "service_transactions",
            f"case_id = '{case_id}' and comment = '{MASKED_SENTENCE}' "
            "and service_item = '企业开办一件事（咨询[固话]）'",
        )
        == 1
    )
    assert (
        lake_rows(
            "hotline_complaints",
            f"ticket_id = '{mask_identifier(f'GD{ID_NUMBER}', key)}' and content = '{MASKED_SENTENCE}'",
        )
        == 1
    )
    assert (
        lake_rows(
            "survey_responses",
            f"response_id = '{mask_identifier(f'WJ{MOBILE_SPACED}', key)}' and comment = '{MASKED_SENTENCE}'",
        )
        == 4
    )  # one per question
    assert lake_rows("leader_reviews", f"department_id = 'D001' and remarks = '{MASKED_SENTENCE}'") == 1
    assert (
        lake_rows(
            "key_projects",
            f"project_id = '{mask_identifier(f'XM-{LANDLINE}', key)}' "
            "and project_name = '一网通办能力提升工程（联系电话[手机号]）'",
        )
        == 1
    )
    assert (
        lake_rows("adjustments", f"reason = '{MASKED_SENTENCE}' and evidence_ref = '市政办〔2025〕[身份证号]号'") == 1
    )
    assert lake_rows("budget_execution", "department_id = 'D001'") == 1  # its unmapped name column held them

    quarantined = dict(
        con.execute(
            f"select source, count(*) from '{lake}/quarantine/*/{MONTH}/*.parquet' "
            "where contains(raw_text, '[手机号]') or contains(raw_text, '[身份证号]') group by source"
        ).fetchall()
    )
    assert quarantined == {
        "service_transactions": 3,
        "hotline_complaints": 1,
        "survey_responses": 1,
        "leader_reviews": 1,
        "budget_execution": 1,
        "key_projects": 1,
    }
    named = con.execute(
        f"select count(*) from '{lake}/quarantine/*/{MONTH}/*.parquet' where contains(raw_text, '[姓名]')"
    ).fetchall()[0][0]
    assert named == 7
    reasons = [
        r[0]
        for r in con.execute(
            f"select reason from '{lake}/quarantine/*/{MONTH}/*.parquet' "
            "where contains(reason, '[手机号]') or contains(reason, '[身份证号]')"
        ).fetchall()
    ]
    assert any("应交材料数" in r for r in reasons) and any("预算数" in r for r in reasons), reasons
    con.close()

    # The case number's token is joinable in the warehouse, where the mobile number was.
    warehouse = duckdb.connect(str(s.duckdb_path), read_only=True)
    assert warehouse.execute("select count(*) from information_schema.columns").fetchall()[0][0] > 100
    found = [
        (schema, table)
        for schema, table in warehouse.execute(
            "select table_schema, table_name from information_schema.columns where column_name = 'case_id'"
        ).fetchall()
        if warehouse.execute(f'select count(*) from "{schema}"."{table}" where case_id = ?', [case_id]).fetchall()[0][0]
    ]
    warehouse.close()
    assert found, "the masked case number is in the warehouse"
    assert (s.bulletins / "monthly" / MONTH / f"bulletin_{MONTH}.html").exists()

    # ---- and none of the planted strings is anywhere the run wrote
    archived = _archived_originals(s.archive, inbox)
    written = [p for p in s.home.rglob("*") if p.is_file() and p not in archived]
    assert any(p.suffix == ".html" for p in written) and any(p.name.endswith(".db") for p in written)
    dbt_outputs = [
        p
        for folder in ("logs", "target")
        for p in (DBT_PROJECT_DIR / folder).rglob("*")
        if p.is_file() and p.stat().st_mtime >= started - 1
    ]

    leaks = _warehouse_leaks(s.duckdb_path) + _lake_leaks(s.lake)
    leaks += _byte_leaks(written, "file") + _byte_leaks(dbt_outputs, "dbt")
    leaks += [f"printed or logged: {needle!r}" for needle in SECRETS if needle in printed.out + printed.err + logged]
    assert leaks == [], f"{len(leaks)} places hold personal data:\n" + "\n".join(leaks[:60])


def test_the_sweep_finds_what_was_not_masked(tmp_path):
    """The searches themselves work: unmasked data is found in a table and a view
    of a DuckDB file, in a Parquet file, and in a file's bytes in GBK."""
    db, lake = tmp_path / "w.duckdb", tmp_path / "lake"
    lake.mkdir()
    con = duckdb.connect(str(db))
    con.execute("create schema staging")
    con.execute("create table staging.t (a bigint, b varchar)")
    con.execute("insert into staging.t values (?, ?)", [int(MOBILE), SENTENCE])
    con.execute("create view staging.v as select * from staging.t")
    con.execute(f"copy staging.t to '{lake / 'x.parquet'}' (format parquet)")
    con.close()
    assert len(_warehouse_leaks(db)) == 4  # a and b, in the table and the view
    assert len(_lake_leaks(lake)) == 2
    (tmp_path / "log.txt").write_bytes(f"… {NAME} …".encode("gbk"))
    (tmp_path / "event.json").write_text(json.dumps({"message": SENTENCE}))
    assert _byte_leaks([tmp_path / "log.txt"], "file")
    assert len(_byte_leaks([tmp_path / "event.json"], "file")) >= 5
    assert mask_free_text(SENTENCE) == MASKED_SENTENCE
