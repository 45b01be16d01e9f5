"""What the command line says when something is wrong, run as an operator runs it:
the real `govperf` in a subprocess, on real homes, inboxes and configuration.

A failed check names its reason and where the rest is; a home in a bad or empty
state gets one sentence and a non-zero exit, never a traceback; a file name
cannot forge a log line; check-config finds each mapping's headers in the inbox.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.sample.generator import generate_city
from pipelines.settings import PROJECT_ROOT

GOVPERF = str(Path(sys.executable).with_name("govperf"))
FORGED = "2025-08-01 12:00:00 +0000 - dagster - INFO - FORGED all checks passed"


def govperf(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([GOVPERF, *args], env=env, capture_output=True, text=True, timeout=timeout)


def home_env(tmp_path: Path, **paths: Path) -> dict[str, str]:
    """An environment pointing govperf at folders under tmp_path (all empty by default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    defaults = {
        "GOVPERF_HOME": tmp_path / "home",
        "GOVPERF_INBOX": tmp_path / "inbox",
        "GOVPERF_CACHE": tmp_path / "cache",
    }
    for name, path in (defaults | paths).items():
        env[name] = str(path)
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return env


def one_sentence(result: subprocess.CompletedProcess) -> str:
    """The error's single line; fails if there is a traceback or more than one line."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def tiny_city(inbox: Path) -> None:
    generate_city(
        inbox,
        departments_yaml=PROJECT_ROOT / "sources" / "reference" / "departments.yaml",
        seed=11,
        first_month="2025-07",
        last_month="2025-08",
        transactions=2000,
    )


# ------------------------------------------------------------------ printable


def test_printable_escapes_every_control_character_and_keeps_other_text():
    from pipelines.text import printable

    assert printable("好差评明细_202508\n伪造.csv") == "好差评明细_202508\\n伪造.csv"
    assert printable("a\rb\tc\x00d\x1be\x7ff\x85g\u2028h") == "a\\rb\\tc\\x00d\\x1be\\x7ff\\x85g\\u2028h"
    assert printable("市场监管局 2025-08 (ok)") == "市场监管局 2025-08 (ok)"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]:
        assert "\n" not in printable(f"x{chr(code)}y") and len(printable(f"x{chr(code)}y").splitlines()) == 1


# ------------------------------------------------------------------ empty and bad homes


@pytest.mark.slow
def test_every_command_answers_an_empty_home_in_one_sentence(tmp_path: Path):
    env = home_env(tmp_path)

    approve = govperf("approve", "--period", "2025-07", "--by", "张三", env=env)
    assert approve.returncode != 0
    assert "no warehouse at" in one_sentence(approve) and "govperf run" in approve.stderr

    run = govperf("run", env=env)
    assert run.returncode != 0
    assert f"no extracts matching any mapping in {tmp_path / 'inbox'}" in one_sentence(run)

    check = govperf("check-config", env=env)
    assert check.returncode == 0, check.stderr
    assert "Traceback" not in check.stderr and check.stdout.startswith("ok:")

    sample = govperf(
        "sample",
        "--out",
        str(tmp_path / "generated"),
        "--first-month",
        "2025-07",
        "--last-month",
        "2025-07",
        "--transactions",
        "200",
        env=env,
    )
    assert sample.returncode == 0, sample.stderr
    assert "Traceback" not in sample.stderr and sample.stdout.startswith("wrote ")


@pytest.mark.slow
def test_every_command_answers_a_home_in_a_bad_state_in_one_sentence(tmp_path: Path):
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")

    # A warehouse that is not a DuckDB file, and one that has no marts.
    env = home_env(tmp_path)
    warehouse = tmp_path / "home" / "warehouse" / "govperf.duckdb"
    warehouse.parent.mkdir(parents=True)
    warehouse.write_bytes(b"half a copied file")
    damaged = govperf("approve", "--period", "2025-07", "--by", "张三", env=env)
    assert damaged.returncode != 0
    assert f"the warehouse {warehouse} cannot be read" in one_sentence(damaged)
    warehouse.unlink()
    duckdb.connect(str(warehouse)).close()
    empty = govperf("approve", "--period", "2025-07", "--by", "张三", env=env)
    assert empty.returncode != 0
    assert f"the warehouse {warehouse} cannot be read" in one_sentence(empty)

    # A configuration folder with nothing in it.
    no_config = home_env(tmp_path, GOVPERF_CONFIG=tmp_path / "empty_config")
    for args in (["check-config"], ["sample", "--out", str(tmp_path / "generated")], ["run"]):
        result = govperf(*args, env=no_config)
        assert result.returncode != 0, args
        assert "departments.yaml" in one_sentence(result) or "mapping" in one_sentence(result), args

    # A Dagster home where a file stands: the UI refuses before it starts anything.
    ui = govperf("ui", env=home_env(tmp_path, DAGSTER_HOME=in_the_way), timeout=120)
    assert ui.returncode != 0
    assert str(in_the_way) in one_sentence(ui)

    # A home where a file stands: the run refuses before it starts.
    tiny_city(tmp_path / "inbox")
    run = govperf("run", "--job", "ingest", env=home_env(tmp_path, GOVPERF_HOME=in_the_way), timeout=300)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert str(in_the_way) in run.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------------ check-config against the inbox


def test_check_config_names_the_inbox_file_and_the_mapped_header_or_sheet_it_lacks(tmp_path: Path):
    tiny_city(tmp_path / "inbox")
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "sources" / "reference", config / "reference")
    shutil.copytree(PROJECT_ROOT / "sources" / "mappings", config / "mappings")
    transactions = config / "mappings" / "service_transactions.yaml"
    text = transactions.read_text(encoding="utf-8")
    assert "rating: 评价等级\n" in text
    transactions.write_text(text.replace("rating: 评价等级\n", "rating: 满意度等级\n"), encoding="utf-8")
    budget = config / "mappings" / "budget_execution.yaml"
    budget.write_text(budget.read_text(encoding="utf-8") + 'sheet: "执行情况表"\n', encoding="utf-8")

    result = govperf("check-config", env=home_env(tmp_path, GOVPERF_CONFIG=config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for month in ("202507", "202508"):
        assert re.search(
            rf"mapping 'service_transactions', file service_transactions/好差评明细_{month}\.csv: .*"
            r"missing columns: 满意度等级",
            result.stderr,
        ), result.stderr
        assert re.search(rf"file budget/预算执行_{month}\.xlsx: .*no sheet named '执行情况表'", result.stderr), (
            result.stderr
        )
    assert "4 of 12 inbox file(s)" in result.stderr


# ------------------------------------------------------------------ a failed check, a hostile name


@pytest.fixture(scope="module")
def failed_ingest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`govperf run --job ingest` over a month whose transactions file fails its
    quarantine limit and whose name holds a newline followed by a forged log line."""
    root = tmp_path_factory.mktemp("failed_ingest")
    inbox = root / "inbox"
    tiny_city(inbox)
    clean = inbox / "service_transactions" / "好差评明细_202508.csv"
    lines = clean.read_bytes().decode("gbk").splitlines(keepends=True)
    for i in range(1, len(lines), 5):  # a fifth of the ratings become an unknown level
        lines[i] = lines[i].replace(",满意,", ",很不好,", 1).replace(",非常满意,", ",很不好,", 1)
    hostile = clean.with_name(f"好差评明细_202508\n{FORGED}.csv")
    hostile.write_bytes("".join(lines).encode("gbk"))
    clean.unlink()
    env = home_env(root)
    result = govperf("run", "--job", "ingest", "--from", "2025-08", "--to", "2025-08", env=env)
    return {"result": result, "home": root / "home", "name": hostile.name}


@pytest.mark.slow
def test_a_failed_blocking_check_prints_its_reason_its_findings_and_where_the_rest_is(failed_ingest):
    result = failed_ingest["result"]
    assert result.returncode == 1
    run_id = re.search(r"run ([0-9a-f-]{36}) failed", result.stderr).group(1)
    escaped = f"service_transactions/{failed_ingest['name']}".replace("\n", "\\n")
    assert (
        f"check ingest/service_transactions:quarantine_within_limit failed: 2025-08: {escaped}: 隔离比例"
        in result.stderr
    ), result.stderr
    assert f"run {run_id} in the Dagster UI" in result.stderr
    assert str(failed_ingest["home"] / "lake" / "check_results") in result.stderr


@pytest.mark.slow
def test_a_newline_in_a_file_name_forges_no_log_line(failed_ingest):
    result = failed_ingest["result"]
    output = (result.stdout + result.stderr).splitlines()
    assert not [line for line in output if line.startswith(FORGED[:40])]
    # The name is in the log, escaped, on the line that reports its landing.
    landed = [line for line in output if "sha256=" in line and "FORGED" in line]
    assert landed and all("好差评明细_202508\\n2025-08-01" in line for line in landed), landed
