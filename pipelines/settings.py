"""Where govperf reads its configuration and writes its data.

Every path can be moved with an environment variable; the defaults keep everything
inside the project folder so that a fresh clone works with no set-up.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
QUALITY_DIR = PROJECT_ROOT / "quality"
REPORTS_DIR = PROJECT_ROOT / "reports"

# The engines dbt can build the warehouse on: a target of the same name in
# dbt_project/profiles.yml each. GOVPERF_ENGINE chooses; DuckDB by default.
ENGINES = ("duckdb", "spark")


class UnknownEngine(ValueError):
    """GOVPERF_ENGINE names no engine govperf can build on."""


def _installed(*distributions: str) -> bool:
    try:
        for name in distributions:
            importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def engine() -> str:
    """The engine dbt builds on (GOVPERF_ENGINE: duckdb, the default, or spark)."""
    chosen = os.environ.get("GOVPERF_ENGINE", "").strip().lower() or "duckdb"
    if chosen not in ENGINES:
        raise UnknownEngine(
            f"GOVPERF_ENGINE={os.environ['GOVPERF_ENGINE']!r} is no engine govperf knows: use one of {', '.join(ENGINES)}"
        )
    if chosen == "spark" and not _installed("dbt-spark", "pyspark"):
        raise UnknownEngine(
            "GOVPERF_ENGINE=spark needs dbt-spark and pyspark, which are not installed: "
            "`make install-test` installs them (or `pip install -e '.[spark]'`), and Spark needs Java 17"
        )
    return chosen


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Read them through `settings()` so tests can move them."""

    home: Path  # GOVPERF_HOME: everything the pipeline writes
    config_dir: Path  # GOVPERF_CONFIG: mappings/ and reference/
    inbox: Path  # GOVPERF_INBOX: where departments' extracts arrive
    duckdb_path: Path  # GOVPERF_DUCKDB: the warehouse (public contract: schema marts)

    @property
    def lake(self) -> Path:
        """Canonical Parquet, one folder per source, one file per accepted extract."""
        return self.home / "lake"

    @property
    def archive(self) -> Path:
        """Every accepted original file, addressed by its SHA-256."""
        return self.home / "archive"

    @property
    def bulletins(self) -> Path:
        """Draft editions, one folder each with its pages and XLSX (publish/edition_folder.py)."""
        return self.home / "bulletins"

    @property
    def published(self) -> Path:
        """Approved editions, one folder per revision, and the archive index."""
        return self.bulletins / "published"

    @property
    def gate_dir(self) -> Path:
        """Stored check outcomes: how a later run learns that a month failed its gate."""
        return self.home / "gate"

    @property
    def masking_key_file(self) -> Path:
        """The key of the keyed hash that masks personal data in identifiers, made
        once (mode 0600) unless GOVPERF_MASKING_KEY is set. Keep it with the home:
        another key gives other tokens for the same numbers."""
        return self.home / "keys" / "masking.key"

    @property
    def signing_key_file(self) -> Path:
        """The Ed25519 key that signs the ledger's tree heads, made once (mode 0600)
        beside the masking key, unless GOVPERF_SIGNING_KEY names a file elsewhere
        (keep it outside the home, so whoever can edit the home cannot re-sign)."""
        return _path("GOVPERF_SIGNING_KEY", self.home / "keys" / "signing_ed25519.pem")

    @property
    def ledger_dir(self) -> Path:
        """The append-only, hash-linked record of every event that makes or moves evidence."""
        return self.home / "ledger"

    @property
    def cache_dir(self) -> Path:
        """Caches that can be rebuilt (jieba's dictionary, chart SVGs by spec hash);
        GOVPERF_CACHE lets several homes share one."""
        return _path("GOVPERF_CACHE", self.home / "cache")

    @property
    def mappings_dir(self) -> Path:
        return self.config_dir / "mappings"

    @property
    def reference_dir(self) -> Path:
        return self.config_dir / "reference"

    @property
    def spark_home(self) -> Path:
        """Spark's warehouse folder (its tables as Parquet) and embedded Derby metastore,
        when GOVPERF_ENGINE=spark."""
        return self.home / "spark"

    @property
    def dagster_home(self) -> Path:
        return _path("DAGSTER_HOME", self.home / "dagster_home")


def settings() -> Settings:
    home = _path("GOVPERF_HOME", PROJECT_ROOT / "var")
    return Settings(
        home=home,
        config_dir=_path("GOVPERF_CONFIG", PROJECT_ROOT / "sources"),
        inbox=_path("GOVPERF_INBOX", PROJECT_ROOT / "sources" / "sample"),
        duckdb_path=_path("GOVPERF_DUCKDB", home / "warehouse" / "govperf.duckdb"),
    )
