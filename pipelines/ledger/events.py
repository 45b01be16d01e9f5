"""What the ledger records, in one place: the event kinds and their bodies.

    original_archived   an accepted original: SHA-256, size, original name, delivery time
    file_landed         a landing: rows read / accepted / quarantined, the Parquet written and its hashes
    checks              the outcomes of one check set for a source and month
    configuration       a fingerprint of the catalogue, the mappings and bulletin.yaml (when it changes)
    dbt_build           the models built and a digest of every mart per period (mart_digest.py)
    approval            a published revision: approver, time, run id, manifest hash, every file's hash

Each step that appends signs a checkpoint (a tree head) when it is done, so the
last step of every run leaves the ledger signed, and puts the head in its Dagster
metadata (`ledger_checkpoint`): the event log then pins it, beside the heads that
published editions print. Paths in bodies are relative to the home.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipelines.ledger.keys import SigningKey
from pipelines.ledger.store import Ledger

CHECKPOINT_METADATA = "ledger_checkpoint"
LANDING_KINDS = ("accepted", "quarantine", "file_load")


def ledger_of(home: Path) -> Ledger:
    return Ledger(home / "ledger")


def signing_key() -> SigningKey:
    from pipelines.settings import settings

    return SigningKey.load_or_create(settings().signing_key_file)


def sign(ledger: Ledger) -> dict[str, Any]:
    """Sign the ledger's current tree head; the head as a dict (for metadata, manifests)."""
    return ledger.checkpoint(signing_key()).to_dict()


def checkpoint_metadata(home: Path) -> dict[str, Any]:
    """Sign a checkpoint and return it as Dagster metadata, so the event log pins it."""
    import dagster as dg

    return {CHECKPOINT_METADATA: dg.MetadataValue.json(sign(ledger_of(home)))}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _relative(path: Path, home: Path) -> str:
    try:
        return path.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def landing_bodies(home: Path, landing: Any, paths: dict[str, Path]) -> list[tuple[str, dict[str, Any]]]:
    """The archive and landing entries of one FileLanding (paths: its lake Parquet by kind)."""
    archived = home / landing.archive_path
    bodies: list[tuple[str, dict[str, Any]]] = []
    if archived.is_file():
        bodies.append(
            (
                "original_archived",
                {
                    "sha256": landing.file_hash,
                    "size": archived.stat().st_size,
                    "original_name": landing.file_name,
                    "delivered_at": landing.submitted_at,
                    "archive_path": _relative(archived, home),
                    "source": landing.source,
                    "period": landing.period,
                },
            )
        )
    bodies.append(
        (
            "file_landed",
            {
                "source": landing.source,
                "period": landing.period,
                "file_name": landing.file_name,
                "file_hash": landing.file_hash,
                "config_fingerprint": landing.config_fingerprint,
                "rows_read": landing.rows_read,
                "rows_accepted": landing.rows_accepted,
                "rows_quarantined": landing.rows_quarantined,
                "file_error": landing.file_error,
                "parquet": {
                    kind: {"path": _relative(paths[kind], home), "sha256": file_sha256(paths[kind])}
                    for kind in LANDING_KINDS
                    if paths[kind].is_file()
                },
            },
        )
    )
    return bodies


def record_landings(home: Path, landings: Iterable[Any], paths_of) -> int:
    """Append the archive and landing entries of landings the ledger does not hold yet
    (the same bytes landed the same way, with the same Parquet, are one event)."""
    ledger = ledger_of(home)
    entries = ledger.entries()
    known = {
        (e.body["file_hash"], e.body["config_fingerprint"], _parquet_key(e.body["parquet"]))
        for e in entries
        if e.kind == "file_landed"
    }
    archived = {e.body["sha256"] for e in entries if e.kind == "original_archived"}
    items = []
    for landing in landings:
        for kind, body in landing_bodies(home, landing, paths_of(landing)):
            if kind == "original_archived":
                if body["sha256"] in archived:
                    continue
                archived.add(body["sha256"])
            else:
                key = (body["file_hash"], body["config_fingerprint"], _parquet_key(body["parquet"]))
                if key in known:
                    continue
                known.add(key)
            items.append((kind, body))
    if items:
        ledger.append_many(items)
    return len(items)


def _parquet_key(parquet: dict[str, dict[str, str]]) -> tuple:
    return tuple(sorted((kind, item["sha256"]) for kind, item in parquet.items()))


def record_checks(home: Path, source: str, period: dt.date, check_set: str, outcomes: Sequence[Any]) -> None:
    ledger_of(home).append(
        "checks",
        {
            "source": source,
            "period": period,
            "check_set": check_set,
            "outcomes": [
                {
                    "check_name": o.check_name,
                    "file_hash": o.file_hash,
                    "severity": o.severity,
                    "passed": o.passed,
                    "details": o.details,
                }
                for o in outcomes
            ],
        },
    )


def configuration_files(config_dir: Path) -> dict[str, str]:
    """SHA-256 of every YAML file under the configuration folder (catalogue, mappings,
    bulletin.yaml, departments, ...), by its path there."""
    return {
        path.relative_to(config_dir).as_posix(): file_sha256(path)
        for path in sorted(config_dir.rglob("*.y*ml"))
        if path.is_file() and "sample" not in path.relative_to(config_dir).parts
    }


def record_configuration(home: Path, config_dir: Path) -> bool:
    """Append a configuration entry when the fingerprint differs from the last one."""
    ledger = ledger_of(home)
    files = configuration_files(config_dir)
    fingerprint = hashlib.sha256("\n".join(f"{k} {v}" for k, v in files.items()).encode()).hexdigest()
    last = ledger.last("configuration")
    if last is not None and last.body["fingerprint"] == fingerprint:
        return False
    changed = sorted(k for k in files if last is None or last.body["files"].get(k) != files[k])
    removed = sorted(k for k in (last.body["files"] if last else {}) if k not in files)
    ledger.append(
        "configuration",
        {"fingerprint": fingerprint, "files": files, "changed": changed, "removed": removed},
    )
    return True


def record_build(
    home: Path,
    run_id: str,
    months: Sequence[dt.date],
    succeeded: bool,
    models: list[str],
    marts: dict,
    warehouse_sha256: str | None = None,
    fingerprints: dict | None = None,
    engine: str = "duckdb",
) -> None:
    """`engine`: the dbt target that built (duckdb, spark); the next build reads the
    marts as that engine left them. `warehouse_sha256`: the warehouse file's bytes as the build left them. The next
    build finds the same bytes and need not recompute the digests to know that nobody
    changed the marts since (transform/assets.py). `fingerprints`: each mart group's
    fast hash, which tells the next build the groups it need not hash again
    (ledger/mart_digest.py); never evidence."""
    ledger_of(home).append(
        "dbt_build",
        {
            "run_id": run_id,
            "period_start": months[0],
            "period_end": months[-1],
            "succeeded": succeeded,
            "models": models,
            "marts": marts,
            "warehouse_sha256": warehouse_sha256,
            "fingerprints": fingerprints or {},
            "engine": engine,
        },
    )


def last_build(home: Path):
    """The last dbt build entry, or None."""
    return ledger_of(home).last("dbt_build")


def head_after(ledger: Ledger, index: int) -> dict[str, Any] | None:
    """The first signed head that covers entry `index`: for a build entry, the head its
    run signed when the build was done."""
    for head in ledger.checkpoints():
        if head.tree_size > index:
            return head.to_dict()
    return None


# ---------------------------------------------------------------- the lake's files

SCHEMA_FOLDER = "_schema"  # zero-row files that give dbt a schema before any data: checked for rows, not recorded


def lake_file_state(entries: Iterable[Any]) -> dict[str, tuple[str, int]]:
    """{path relative to the home: (sha256, entry index)} of every lake file as last recorded."""
    state: dict[str, tuple[str, int]] = {}
    for entry in entries:
        if entry.kind == "lake_files":
            for path, digest in entry.body["files"].items():
                state[path] = (digest, entry.index)
            for path in entry.body["removed"]:
                state.pop(path, None)
    return state


def lake_files_under(folder: Path) -> list[Path]:
    """The Parquet files under `folder` a reader can see (no temporary .partial, no schema files)."""
    return sorted(
        p for p in folder.rglob("*.parquet") if p.is_file() and SCHEMA_FOLDER not in p.relative_to(folder).parts
    )


def record_lake_files(home: Path, folders: Iterable[Path]) -> int:
    """Record the SHA-256 of every lake file under `folders` that differs from its last
    record, and the recorded ones that are gone. Each step records the folders it writes,
    so verify can name any lake file no step wrote (every file dbt reads is covered)."""
    ledger = ledger_of(home)
    state = lake_file_state(ledger.entries())
    scopes = [(f.resolve().relative_to(home.resolve()).as_posix() + "/") for f in folders]
    files, seen = {}, set()
    for folder in folders:
        for path in lake_files_under(folder):
            relative = _relative(path, home)
            seen.add(relative)
            digest = file_sha256(path)
            if state.get(relative, ("",))[0] != digest:
                files[relative] = digest
    removed = sorted(p for p in state if p not in seen and any(p.startswith(scope) for scope in scopes))
    if files or removed:
        ledger.append("lake_files", {"files": dict(sorted(files.items())), "removed": removed})
    return len(files) + len(removed)
