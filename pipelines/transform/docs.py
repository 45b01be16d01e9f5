"""dbt's documentation site for auditors: every model, column, test and the lineage,
as one self-contained HTML file that opens offline (`govperf docs`).

`dbt docs generate --static` writes static_index.html with the manifest and the
catalogue inlined. The catalogue is read from the warehouse's information schema,
so generation opens the DuckDB file: under the shared warehouse lock (it waits
for a build in progress, never meets one half-written) and through the profile's
`docs` target, which opens the file read-only, so other readers keep reading.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from pipelines.parquet import temporary_beside
from pipelines.settings import DBT_PROJECT_DIR, settings
from pipelines.warehouse import warehouse_lock

# What the folder holds: the site, and the two files it was made from (for tools).
SITE_FILES = {"static_index.html": "index.html", "manifest.json": "manifest.json", "catalog.json": "catalog.json"}
# A <script src> or <link href> to a web address: the page would need the network.
REMOTE_REFERENCE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)


class DocsError(RuntimeError):
    """The site could not be made; the message says why in one sentence."""


def docs_dir() -> Path:
    return settings().home / "docs"


def remote_references(html: str) -> list[str]:
    """The script and stylesheet tags of a page that load from the network."""
    return [match.group(0) for match in REMOTE_REFERENCE.finditer(html)]


def generate_docs(out: Path | None = None) -> Path:
    """Write the site into `out` (default: <home>/docs) and return its index.html."""
    s = settings()
    out = out or docs_dir()
    if not s.duckdb_path.exists():
        raise DocsError(f"no warehouse at {s.duckdb_path} yet: run `govperf run` first")
    # Imported here: the project module loads dagster-dbt, which a refusal above need not wait for.
    from pipelines.transform.project import dbt_environment, dbt_executable, home_log_dir, invocation_dir

    target = invocation_dir(f"docs-{uuid.uuid4().hex[:8]}")
    command = [
        dbt_executable(),
        "docs",
        "generate",
        "--static",
        "--target",
        "docs",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(home_log_dir()),
    ]
    try:
        with warehouse_lock(exclusive=False):
            done = subprocess.run(
                command,
                cwd=DBT_PROJECT_DIR,
                env={**os.environ, **dbt_environment()},
                capture_output=True,
                text=True,
            )
        if done.returncode != 0:
            errors = [line for line in done.stdout.splitlines() if "error" in line.lower()] or [done.stderr.strip()]
            raise DocsError(f"dbt docs generate failed ({target}): {' '.join(errors)[-800:]}")
        out.mkdir(parents=True, exist_ok=True)
        # Each file written beside and renamed: a browser open on the old site never reads half a file.
        for made, name in SITE_FILES.items():
            partial = temporary_beside(out / name)
            shutil.copyfile(target / made, partial)
            partial.replace(out / name)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return out / "index.html"
