"""The Dagster UI serves the whole code location, and the auditors' instance of
it (`dagster-webserver --read-only`) refuses to launch anything. A stop of
`govperf ui` (SIGTERM, SIGINT) ends every process it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.runner import instance
from pipelines.settings import PROJECT_ROOT
from tests.processes import alive, descendants

QUERY = """
{
  permissions { permission value }
  assetNodes { assetKey { path } }
  shouldShowNux
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


@contextlib.contextmanager
def read_only_webserver() -> Iterator[tuple[int, dict]]:
    """`dagster-webserver --read-only` on the current home, as `govperf ui --read-only`
    starts it, once it answers with the asset graph: its port and that answer."""
    instance()  # the persistent DAGSTER_HOME the UI reads, as `govperf ui` makes it
    port = _free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-w", str(PROJECT_ROOT / "workspace.yaml"), "--read-only", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
        yield port, data
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_read_only_webserver_shows_lineage_and_refuses_launches(govperf_home: Path):
    with read_only_webserver() as (_port, data):
        permissions = {p["permission"]: p["value"] for p in data["permissions"]}
        assert permissions["launch_pipeline_execution"] is False
        assert permissions["launch_partition_backfill"] is False
        keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
        assert {"ingest/service_transactions", "marts/fct_rankings", "publish/bulletins"} <= keys
        assert data["shouldShowNux"] is False  # what the UI asks before its sign-up pop-up


def test_the_ui_greets_auditors_with_no_sign_up_pop_up(govperf_home: Path):
    """Dagster's UI shows a newsletter sign-up ("nux") on a fresh home unless the
    instance's dagster.yaml says `nux: enabled: false`; govperf writes it."""
    import yaml

    with instance() as dagster_instance:
        assert dagster_instance.nux_enabled is False
    written = yaml.safe_load((govperf_home / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"))
    assert written["nux"] == {"enabled": False}


# ------------------------------------------------------------------ stopping `govperf ui`


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "stop"),
    [([], signal.SIGTERM), ([], signal.SIGINT), (["--read-only"], signal.SIGTERM)],
    ids=["dev-sigterm", "dev-sigint", "read-only-sigterm"],
)
def test_a_stop_ends_every_process_the_ui_started(govperf_home: Path, options: list[str], stop: signal.Signals):
    port = _free_port()
    govperf = Path(sys.executable).with_name("govperf")
    cli = subprocess.Popen(
        [str(govperf), "ui", "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + 240  # the UI loads the code location: slow on a busy machine
        while time.monotonic() < deadline and cli.poll() is None and not _answers(port):
            time.sleep(1)
        assert _answers(port), cli.stderr.read().decode()[-2000:] if cli.poll() is not None else "no answer"
        time.sleep(2)  # the daemon starts beside the webserver
        started = descendants(cli.pid)
        # dagster dev: webserver, daemon, code server; the read-only UI: the webserver and its code server.
        assert len(started) >= (2 if options else 3), started

        cli.send_signal(stop)
        cli.wait(timeout=30)
        left = {p for p in started if alive(p)}
        assert not left, f"still running after the CLI exited: {left}"
        assert not _answers(port)
    finally:
        for process in {p for p in started if alive(p)}:
            os.kill(process[0], signal.SIGKILL)
        if cli.poll() is None:
            cli.kill()
            cli.wait()
