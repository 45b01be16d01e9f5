"""The real third-party data the tests and examples read is carried in the
repository (tests/data/real), unchanged: a clone with nothing beside it passes
its own tests and runs the README's examples as written."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

REAL = Path(__file__).parent / "data" / "real"


def _listed() -> dict[str, str]:
    lines = (REAL / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line.strip())}


def test_every_real_file_matches_its_checksum():
    listed = _listed()
    present = {p.relative_to(REAL).as_posix() for p in REAL.rglob("*") if p.is_file()} - {"SHA256SUMS", "SOURCES.md"}
    assert present == set(listed), "files and SHA256SUMS disagree"
    for name, digest in listed.items():
        assert hashlib.sha256((REAL / name).read_bytes()).hexdigest() == digest, f"{name} was changed"


def test_every_real_folder_names_its_origin_and_licence():
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    for folder in {name.split("/")[0] for name in _listed()}:
        row = next((line for line in sources.splitlines() if line.startswith(f"| {folder}/")), None)
        assert row is not None, f"SOURCES.md has no row for {folder}/"
        assert re.search(r"@ [0-9a-f]{7,40}", row), f"{folder}/: no commit in SOURCES.md"
        assert len(row.split("|")) >= 6 and row.split("|")[4].strip(), f"{folder}/: no licence in SOURCES.md"


def test_nothing_reads_data_from_outside_the_checkout():
    """Tests, examples, benchmarks and the README point into the repository, never
    at a folder beside the clone."""
    offenders = []
    for path in [PROJECT_ROOT / "README.md", *PROJECT_ROOT.glob("docs/*.md")] + [
        p
        for folder in ("tests", "examples", "benchmarks", "pipelines")
        for p in (PROJECT_ROOT / folder).rglob("*")
        if p.suffix in {".py", ".md", ".yaml", ".yml"} and p.is_file() and p != Path(__file__)
    ]:
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"\.\./shared|parent\s*/\s*\"shared\"|/work/shared", text):
            offenders.append(str(path.relative_to(PROJECT_ROOT)))
    assert not offenders, f"these read data from beside the checkout: {offenders}"
