"""An approval is a Dagster run: `govperf approve`, run as an operator runs it, on
a tiny city scored through Dagster. The run materializes the edition's partition
of publish/published_editions with who approved which revision (what the
read-only UI shows), its id is in the revision's manifest and footer, and a
refusal is a failed run whose reason reaches the operator as one sentence."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.checks import gate
from pipelines.checks.gate import CheckOutcome
from pipelines.settings import PROJECT_ROOT
from tests.conftest import SHARED_CACHE, drafted_on
from tests.test_cli_errors import one_sentence, tiny_city

pytestmark = pytest.mark.slow

GOVPERF = str(Path(sys.executable).with_name("govperf"))
KEY = dg.AssetKey(["publish", "published_editions"])


def govperf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([GOVPERF, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a home whose July and August 2025 went through `govperf run`."""
    root = tmp_path_factory.mktemp("approvals")
    tiny_city(root / "inbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVPERF_", "DAGSTER_"))}
    env |= {
        "GOVPERF_HOME": str(root / "home"),
        "GOVPERF_INBOX": str(root / "inbox"),
        "GOVPERF_CACHE": str(SHARED_CACHE),
        "DAGSTER_HOME": str(root / "home" / "dagster_home"),
    }
    run = govperf("run", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    drafted_on(root / "home", "2025-08-01 09:00")  # appeal windows closed before the approvals below
    return env


@pytest.fixture
def instance(home: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    for name, value in home.items():
        if name.startswith(("GOVPERF_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    from pipelines.runner import instance

    return instance()


def _approval_run_id(stdout: str) -> str:
    return re.search(r"^approval run: ([0-9a-f-]{36}) \(revision \d+\)$", stdout, re.M)[1]


def _failure_description(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    return records[0].event_log_entry.dagster_event.step_failure_data.user_failure_data.description


def test_an_approval_is_a_run_whose_materialization_says_who_signed_which_revision(home, instance):
    approved = govperf("approve", "--period", "2025-07", "--by", "张三", "--at", "2025-08-10 09:30", env=home)
    assert approved.returncode == 0, approved.stderr
    run_id = _approval_run_id(approved.stdout)

    run = instance.get_run_by_id(run_id)
    assert run.job_name == "approval_job" and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == "2025-07" and "2025-07" in instance.get_dynamic_partitions("editions")

    # What the read-only UI shows on the asset's 2025-07 partition.
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=["2025-07"]), limit=10
    ).records
    assert [r.run_id for r in records] == [run_id]
    metadata = {name: value.value for name, value in records[0].asset_materialization.metadata.items()}
    folder = Path(home["GOVPERF_HOME"]) / "bulletins" / "published" / "monthly" / "2025-07" / "r1"
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert metadata["approver"] == "张三" and metadata["revision"] == 1
    assert metadata["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert metadata["files"] == len(manifest["files_sha256"]) and metadata["folder"] == str(folder)
    # The signed tree head that includes the approval entry: the same as the revision's proof.
    proof = json.loads((folder / "proof.json").read_text(encoding="utf-8"))
    assert metadata["ledger_checkpoint"] == proof["tree_head"] and metadata["ledger_checkpoint"]["tree_size"] > 1

    # The run that drew the revision is named in it, in the manifest and every page's footer.
    assert manifest["run_id"] == run_id and manifest["approved_by"] == "张三"
    for page in [folder / "bulletin_2025-07.html", *sorted((folder / "bulletin_2025-07_departments").glob("*"))]:
        assert (
            f'签发运行编号：<code translate="no">{run_id}</code>'
            in page.read_text(encoding="utf-8").split("<footer>")[1]
        )
    assert {p.stat().st_mode & 0o777 for p in folder.rglob("*") if p.is_file()} == {0o444}


def test_a_refused_approval_is_a_failed_run_and_one_sentence(home, instance):
    first = govperf("approve", "--period", "2025-08", "--by", "张三", "--at", "2025-09-10 09:30", env=home)
    assert first.returncode == 0, first.stderr

    again = govperf("approve", "--period", "2025-08", "--by", "张三", env=home)
    assert again.returncode == 1
    sentence = one_sentence(again)
    assert sentence == (
        "Error: 2025-08: revision 1 is already published from the same mart rows; nothing changed, so no new revision"
    )
    run_id = re.search(r"^approval run ([0-9a-f-]{36}) refused 2025-08$", again.stdout, re.M)[1]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert _failure_description(instance, run_id) == sentence.removeprefix("Error: ")

    # A closed gate refuses the same way, naming the failed check.
    gate.record(
        Path(home["GOVPERF_HOME"]) / "lake",
        "service_transactions",
        dt.date(2025, 8, 1),
        "ingest",
        [CheckOutcome("service_transactions", dt.date(2025, 8, 1), "ab", "rows_balanced", "error", False, "行丢失")],
    )
    closed = govperf("approve", "--period", "2025-08", "--by", "张三", "--note", "重报", env=home)
    assert closed.returncode == 1 and "rows_balanced" in one_sentence(closed)
    run_id = re.search(r"^approval run ([0-9a-f-]{36}) refused", closed.stdout, re.M)[1]
    assert "rows_balanced" in _failure_description(instance, run_id)
    # No materialization for a refusal: the partition still shows revision 1 only.
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=["2025-08"]), limit=10
    ).records
    assert len(records) == 1 and records[0].asset_materialization.metadata["revision"].value == 1


UI_QUERY = """
{
  assetOrError(assetKey: {path: ["publish", "published_editions"]}) {
    ... on Asset {
      assetMaterializations(partitions: ["2025-07"]) {
        runId partition
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on IntMetadataEntry { intValue }
        }
      }
    }
  }
}
"""


def test_the_read_only_ui_shows_who_approved_the_edition(home, instance):
    """What an auditor sees: the read-only webserver on the home's DAGSTER_HOME
    answers with the 2025-07 approval (run, approver, revision, manifest hash)."""
    from tests.test_ui import _free_port, _graphql

    manifest = Path(home["GOVPERF_HOME"]) / "bulletins" / "published" / "monthly" / "2025-07" / "r1" / "manifest.json"
    if not manifest.exists():  # this test alone: approve first
        approved = govperf("approve", "--period", "2025-07", "--by", "张三", "--at", "2025-08-10 09:30", env=home)
        assert approved.returncode == 0, approved.stderr
    port = _free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-w", str(PROJECT_ROOT / "workspace.yaml"), "--read-only", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT,
        env=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240  # the webserver loads the code location: slow on a busy machine
        shown = None
        while time.monotonic() < deadline and process.poll() is None and not shown:
            try:
                shown = _graphql(port, UI_QUERY)["assetOrError"]["assetMaterializations"]
            except Exception:
                time.sleep(1)
        assert shown, "the read-only UI did not answer"
    finally:
        process.terminate()
        process.wait(timeout=30)
    record = json.loads(manifest.read_text(encoding="utf-8"))
    [materialization] = shown
    entries = {e["label"]: e.get("text", e.get("intValue")) for e in materialization["metadataEntries"]}
    assert materialization["runId"] == record["run_id"] and materialization["partition"] == "2025-07"
    assert entries["approver"] == "张三" and entries["revision"] == 1
    assert entries["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
