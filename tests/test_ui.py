"""The Dagster UI serves the whole code location, and the auditors' instance of
it (`dagster-webserver --read-only`) refuses to launch anything."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipelines.runner import instance
from pipelines.settings import PROJECT_ROOT

QUERY = """
{
  permissions { permission value }
  assetNodes { assetKey { path } }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def test_read_only_webserver_shows_lineage_and_refuses_launches(govperf_home: Path):
    instance()  # the persistent DAGSTER_HOME the UI reads, as `govperf ui` makes it
    port = _free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-w", str(PROJECT_ROOT / "workspace.yaml"), "--read-only", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        data = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                data = _graphql(port, QUERY)
                if data["assetNodes"]:
                    break
            except Exception:
                time.sleep(1)
        assert data is not None, process.stderr.read().decode()[-2000:] if process.poll() is not None else "no answer"
        permissions = {p["permission"]: p["value"] for p in data["permissions"]}
        assert permissions["launch_pipeline_execution"] is False
        assert permissions["launch_partition_backfill"] is False
        keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
        assert {"ingest/service_transactions", "marts/fct_rankings", "publish/bulletins"} <= keys
    finally:
        process.terminate()
        process.wait(timeout=30)
