"""`govperf verify`: recompute the evidence and compare it with the ledger.

    archived originals   against their original_archived entries (SHA-256, size)
    lake Parquet         against the file_landed entries, and every file in the lake (all dbt
                         reads: landings, registers, check results, reference) against the
                         ledger's last record of it
    marts rows           against the last dbt_build entry (per mart and period)
    published revisions  against their manifests, their approval entries and proof files (every
                         file, the PDF too), and their 文号 (one per edition, never two editions')
    the ledger           its chain, its Merkle roots, every checkpoint's signature, and the
                         heads and keys pinned outside it: in published manifests and proofs,
                         and in Dagster's event log, so a rewritten ledger cannot vouch for itself

Each mismatch names its place (file, mart and period, ledger entry). Notes are
facts an auditor should see that are not tampering (a torn last entry left by a
killed run, set aside at the next append).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.ledger import events
from pipelines.ledger.keys import SigningKey, file_mode_problems
from pipelines.ledger.mart_digest import differences, mart_digests
from pipelines.ledger.proof import verify_proof
from pipelines.ledger.store import LedgerEntry
from pipelines.settings import Settings
from pipelines.text import printable


@dataclass(frozen=True)
class Finding:
    where: str
    what: str


@dataclass
class Report:
    mismatches: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def mismatch(self, where: str, what: str) -> None:
        self.mismatches.append(Finding(where, what))

    def note(self, where: str, what: str) -> None:
        self.notes.append(Finding(where, what))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mismatches": [asdict(f) for f in self.mismatches],
            "notes": [asdict(f) for f in self.notes],
            "checked": self.checked,
        }


class PeriodFilter:
    """Which evidence `--period` selects: a month (2025-07), a quarter (2025-Q3) or a
    year (2025) and its months. Dates are matched by their month; edition keys and mart period keys overlap."""

    def __init__(self, period: str | None):
        self.months: set[str] | None = None
        if period is not None:
            self.months = self._months_of(period)

    @staticmethod
    def _months_of(edition_key: str) -> set[str]:
        from pipelines.publish.config import Edition

        edition = Edition.parse(edition_key)
        return {f"{edition.period.year}-{edition.period.month + n:02d}" for n in range(edition.months)}

    def date(self, value: Any) -> bool:
        return self.months is None or str(value)[:7] in self.months

    def edition(self, key: str) -> bool:
        return self.months is None or bool(self._months_of(key) & self.months)

    def mart_key(self, key: str) -> bool:
        """'all', 'month:2025-07-01', 'quarter:2025-07-01', '-:2025-07-01'."""
        if self.months is None or key == "all":
            return True
        period_type, _, day = key.partition(":")
        if period_type == "quarter":
            return self.edition(f"{day[:4]}-Q{(int(day[5:7]) + 2) // 3}")
        if period_type == "year":
            return self.edition(day[:4])
        return self.date(day)


# ---------------------------------------------------------------- pinned heads


def published_pins(published: Path) -> tuple[list[dict], list[str]]:
    """Tree heads and public keys printed in published revisions (manifests and proofs)."""
    heads, keys = [], []
    for manifest in sorted(published.glob("*/*/r*/manifest.json")):
        try:
            built = json.loads(manifest.read_text(encoding="utf-8")).get("built_from") or {}
        except (OSError, ValueError):
            continue  # the manifest check names it
        if built.get("tree_head"):
            heads.append(built["tree_head"] | {"source": manifest.as_posix()})
        if built.get("public_key"):
            keys.append(built["public_key"])
    for proof in sorted(published.glob("*/*/r*/proof.json")):
        try:
            head = json.loads(proof.read_text(encoding="utf-8"))["tree_head"]
        except (OSError, ValueError, KeyError):
            continue
        heads.append(head | {"source": proof.as_posix()})
        keys.append(head.get("public_key", ""))
    return heads, [k for k in keys if k]


def dagster_pins(dagster_home: Path) -> tuple[list[dict], list[str]]:
    """Tree heads the runs recorded in Dagster's event log (metadata `ledger_checkpoint`)."""
    if not (dagster_home / "dagster.yaml").is_file():
        return [], []
    import dagster as dg

    from pipelines.runner import instance

    wanted = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_OBSERVATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    }
    heads = []
    with instance() as dagster_instance:
        for run in dagster_instance.get_runs():
            for record in dagster_instance.all_logs(run.run_id, of_type=wanted):
                data = record.dagster_event.event_specific_data
                carrier = getattr(data, "materialization", None) or getattr(data, "asset_observation", None) or data
                value = (getattr(carrier, "metadata", None) or {}).get(events.CHECKPOINT_METADATA)
                if value is not None:
                    heads.append(dict(value.data) | {"source": f"Dagster run {run.run_id}"})
    return heads, [h["public_key"] for h in heads if h.get("public_key")]


# ---------------------------------------------------------------- the checks


def check_ledger(report: Report, s: Settings, pins: list[dict], pinned_keys: list[str]) -> list[LedgerEntry]:
    ledger = events.ledger_of(s.home)
    key_file = s.signing_key_file
    current = SigningKey.load_or_create(key_file) if key_file.is_file() else None
    if current is None and (ledger.checkpoints() or pinned_keys):
        report.mismatch(f"signing key {key_file}", "missing: the checkpoints cannot be checked against this home's key")
    for problem in file_mode_problems(key_file) if current else []:
        report.note(f"signing key {key_file}", problem)
    for problem in ledger.verify(
        pinned_heads=pins, pinned_keys=pinned_keys, current_public_key=current.public_key_hex if current else None
    ):
        (report.mismatch if problem.is_mismatch else report.note)(problem.where, problem.what)
    entries = ledger.entries()
    signed = max((head.tree_size for head in ledger.checkpoints()), default=0)
    if len(entries) > signed:
        kinds = sorted({e.kind for e in entries[signed:]})
        report.note(
            f"ledger entries {signed}-{len(entries) - 1}",
            f"note: after the last signed checkpoint ({', '.join(kinds)}): written by a run that did not finish "
            "signing, or added by hand; an approval does not rely on them",
        )
    report.checked["ledger entries"] = len(entries)
    report.checked["pinned tree heads"] = len(pins)
    return entries


def check_archive(report: Report, s: Settings, entries: Iterable[LedgerEntry], period: PeriodFilter) -> None:
    n = 0
    for entry in entries:
        if entry.kind != "original_archived" or not period.date(entry.body.get("period")):
            continue
        n += 1
        body = entry.body
        path = s.home / body["archive_path"]
        where = f"archived original {path} (ledger entry {entry.index}, {body['original_name']})"
        if not path.is_file():
            report.mismatch(where, "missing")
        elif path.stat().st_size != body["size"] or events.file_sha256(path) != body["sha256"]:
            report.mismatch(where, f"edited: its bytes no longer hash to {body['sha256'][:16]}…")
    report.checked["archived originals"] = n


def check_lake(report: Report, s: Settings, entries: Iterable[LedgerEntry], period: PeriodFilter) -> None:
    latest: dict[tuple, LedgerEntry] = {}
    for entry in entries:
        if entry.kind == "file_landed":
            latest[(entry.body["source"], str(entry.body["period"]), entry.body["file_hash"])] = entry
    n = 0
    for entry in latest.values():
        for kind, item in entry.body["parquet"].items():
            current = s.home / item["path"]
            history = s.lake / "history" / current.relative_to(s.lake) if current.is_relative_to(s.lake) else current
            if not period.date(entry.body["period"]):
                continue
            n += 1
            found = next((p for p in (current, history) if p.is_file()), None)
            where = (
                f"lake {current.relative_to(s.home)} ({kind} of {entry.body['file_name']}, ledger entry {entry.index})"
            )
            if found is None:
                report.mismatch(where, "missing (neither current nor in history)")
            elif events.file_sha256(found) != item["sha256"]:
                report.mismatch(
                    where.replace(str(current.relative_to(s.home)), str(found.relative_to(s.home))),
                    f"rows changed: the file no longer hashes to {item['sha256'][:16]}… as landed",
                )
    report.checked["lake files"] = n
    check_lake_files(report, s, entries, period)


def check_lake_files(report: Report, s: Settings, entries: list[LedgerEntry], period: PeriodFilter) -> None:
    """Every Parquet file in the lake (all dbt reads) against the ledger's last record of it,
    and every schema file empty."""
    import pyarrow.parquet as pq

    state = events.lake_file_state(entries)

    def selected(relative: str) -> bool:
        months = [part for part in relative.split("/") if len(part) == 7 and part[4] == "-"]
        return not months or period.date(months[0])

    actual = {events._relative(p, s.home): p for p in events.lake_files_under(s.lake)} if s.lake.is_dir() else {}
    for relative, path in sorted(actual.items()):
        if not selected(relative):
            continue
        recorded = state.get(relative)
        if recorded is None:
            report.mismatch(f"lake {relative}", "no ledger entry records this file: it was not written by a run")
        elif events.file_sha256(path) != recorded[0]:
            report.mismatch(f"lake {relative}", f"changed since ledger entry {recorded[1]} recorded it")
    for relative, (_digest, index) in sorted(state.items()):
        if relative not in actual and selected(relative):
            report.mismatch(f"lake {relative}", f"deleted: ledger entry {index} records it")
    for path in sorted(s.lake.rglob(f"{events.SCHEMA_FOLDER}/**/*.parquet")) if s.lake.is_dir() else []:
        if pq.read_metadata(path).num_rows:
            report.mismatch(f"lake {path.relative_to(s.home)}", "a schema file (it holds no rows) holds rows")
    report.checked["lake files recorded"] = len(state)


def check_marts(report: Report, s: Settings, entries: list[LedgerEntry], period: PeriodFilter) -> None:
    builds = [e for e in entries if e.kind == "dbt_build"]
    if not s.duckdb_path.is_file():
        if builds:
            report.mismatch(f"warehouse {s.duckdb_path}", "missing, but the ledger records dbt builds")
        return
    if not builds:
        report.note(f"warehouse {s.duckdb_path}", "note: the ledger records no dbt build to compare it with")
        return
    from pipelines.warehouse import read_warehouse

    with read_warehouse() as con:
        current = mart_digests(con)
    recorded = builds[-1].body["marts"]
    started = [e for e in entries if e.kind == "dbt_build_started" and e.index > builds[-1].index]
    if started:
        report.note(
            f"ledger entry {started[-1].index}",
            f"a dbt build started (run {started[-1].body.get('run_id')}) and recorded no end: it was interrupted, "
            "so the marts may differ from the last build entry until the next build",
        )
    if period.months is not None:

        def only(digests: dict) -> dict:
            return {t: {k: v for k, v in g.items() if period.mart_key(k)} for t, g in digests.items()}

        recorded, current = only(recorded), only(current)
    for problem in differences(recorded, current):
        report.mismatch(f"{problem.split(': ')[0]} (against dbt build entry {builds[-1].index})", problem)
    report.checked["mart periods"] = sum(len(g) for g in current.values())


def _files_in(folder: Path) -> set[str]:
    skip = {"manifest.json", "proof.json"}
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name not in skip}


def check_published(report: Report, s: Settings, entries: list[LedgerEntry], period: PeriodFilter) -> None:
    approvals = {
        (e.body["period"], e.body["revision"]): e
        for e in entries
        if e.kind == "approval" and period.edition(e.body["period"])
    }
    folders = {}
    for manifest in sorted(s.published.glob("*/*/r*/manifest.json")):
        folder = manifest.parent
        if period.edition(folder.parent.name):
            folders[(folder.parent.name, int(folder.name[1:]))] = folder
    for _key, entry in sorted(approvals.items()):
        body = entry.body
        folder = s.home / body["folder"] if not Path(body["folder"]).is_absolute() else Path(body["folder"])
        where = f"published {body['period']} r{body['revision']} ({folder})"
        if not (folder / "manifest.json").is_file():
            report.mismatch(where, f"missing: ledger entry {entry.index} records its approval by {body['approved_by']}")
            continue
        check_revision_files(report, where, folder, body, f"ledger entry {entry.index}")
        for extra in sorted(_files_in(folder) - set(body["files_sha256"])):
            report.mismatch(f"{where} {extra}", "a file the approval does not list")
        check_proof_file(report, folder / "proof.json", entry)
        for path in [folder, *folder.rglob("*")]:
            writable = path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            if writable:
                report.note(
                    f"{where} {path.relative_to(folder) if path != folder else ''}".strip(),
                    "note: writable; published revisions are written read-only",
                )
                break
    for key, folder in sorted(folders.items()):
        if key not in approvals:
            report.mismatch(f"published {folder}", "no approval entry of the ledger records this revision")
    if period.months is None:
        check_document_numbers(report, folders)
    report.checked["published revisions"] = len(approvals)
    index = s.published / "index.html"
    if index.is_file() and period.months is None:
        from pipelines.publish.editions import index_text

        if index.read_text(encoding="utf-8") != index_text(s.published):
            report.mismatch(f"archive index {index}", "differs from the index of the published manifests")


def check_document_numbers(report: Report, folders: dict[tuple[str, int], Path]) -> None:
    """文号: one edition's revisions carry one number, and no two editions carry the same
    (pipelines/publish/document_numbers.py). Revisions published before editions had
    numbers carry none."""
    editions: dict[str, set[str]] = {}
    for (key, revision), folder in sorted(folders.items()):
        try:
            number = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("document_number")
        except (OSError, ValueError):
            continue  # the manifest's own check names it
        if number:
            if editions.get(key) and number not in editions[key]:
                report.mismatch(
                    f"published {key} r{revision} ({folder})",
                    f"文号 {number} differs from the edition's earlier {'、'.join(sorted(editions[key]))}",
                )
            editions.setdefault(key, set()).add(number)
    holders: dict[str, list[str]] = {}
    for key, numbers in editions.items():
        for number in numbers:
            holders.setdefault(number, []).append(key)
    for number, keys in sorted(holders.items()):
        if len(keys) > 1:
            report.mismatch(f"文号 {number}", f"carried by more than one edition: {', '.join(sorted(keys))}")


def check_revision_files(report: Report, where: str, folder: Path, approval: dict, approved_in: str) -> None:
    """A revision folder's manifest and files against the hashes its approval entry holds."""
    if events.file_sha256(folder / "manifest.json") != approval["manifest_sha256"]:
        report.mismatch(f"{where} manifest.json", f"edited or replaced: not the manifest approved in {approved_in}")
    for name, digest in sorted(approval["files_sha256"].items()):
        path = folder / name
        if not path.is_file():
            report.mismatch(f"{where} {name}", "deleted")
        elif events.file_sha256(path) != digest:
            report.mismatch(f"{where} {name}", "edited: its bytes differ from the approved file")


def check_proof_file(report: Report, path: Path, entry: LedgerEntry | None = None) -> None:
    where = f"proof {path}"
    if not path.is_file():
        report.mismatch(where, "missing")
        return
    try:
        proof = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        report.mismatch(where, f"not JSON ({error})")
        return
    for problem in verify_proof(proof):
        report.mismatch(where, problem)
    if entry is not None and proof.get("entry") != entry.line.decode("utf-8"):
        report.mismatch(where, f"its entry is not ledger entry {entry.index}")


def check_appeals(report: Report, s: Settings, entries: list[LedgerEntry], period: PeriodFilter) -> None:
    """Every appeal and decision in state/appeals.jsonl is the ledger's appeal_filed or
    appeal_decided entry for it, and the other way round: none edited, added or removed."""
    from pipelines import jsonl_state
    from pipelines.appeals.store import appeals_path

    path = appeals_path(s.home)
    try:
        lines = jsonl_state.read(path, required=("event", "appeal_id"))
    except ValueError as error:
        report.mismatch(str(path), str(error))
        return
    in_file = {(f"appeal_{r['event']}", r["appeal_id"]): {k: v for k, v in r.items() if k != "event"} for r in lines}
    in_ledger = {(e.kind, e.body.get("appeal_id")): e for e in entries if e.kind in ("appeal_filed", "appeal_decided")}
    period_of = {key[1]: body.get("period") for key, body in in_file.items() if key[0] == "appeal_filed"}
    period_of |= {key[1]: e.body.get("period") for key, e in in_ledger.items() if key[0] == "appeal_filed"}
    n = 0
    for key in sorted(set(in_file) | set(in_ledger), key=lambda k: (k[1] or "", k[0])):
        if not period.date(period_of.get(key[1])):
            continue
        n += 1
        where = f"{key[0].removeprefix('appeal_')} appeal {key[1]} in {path}"
        if key not in in_ledger:
            report.mismatch(where, "not in the ledger: added or edited after it was recorded")
        elif key not in in_file:
            report.mismatch(where, f"missing: the ledger recorded it (entry {in_ledger[key].index})")
        elif in_file[key] != in_ledger[key].body:
            report.mismatch(where, f"edited: it differs from ledger entry {in_ledger[key].index}")
    if len(lines) != len(in_file):
        report.mismatch(str(path), f"{len(lines) - len(in_file)} record(s) repeat an appeal or decision")
    report.checked["appeals and decisions"] = n


def check_year_freezes(report: Report, s: Settings, entries: list[LedgerEntry], period: PeriodFilter) -> None:
    """Every freeze and reopening in state/year_freezes.jsonl is the ledger's year_frozen
    or year_reopened entry with its number, and the other way round: none edited, added
    or removed (pipelines/year_freeze.py)."""
    from pipelines import year_freeze

    path = year_freeze.freezes_path(s.home)
    try:
        lines = year_freeze.read_events(s.home)
    except ValueError as error:
        report.mismatch(str(path), str(error))
        return
    kinds = ("year_frozen", "year_reopened")
    in_file = {(f"year_{r['event']}", r["n"]): {k: v for k, v in r.items() if k != "event"} for r in lines}
    in_ledger = {(e.kind, e.body.get("n")): e for e in entries if e.kind in kinds}
    year_of = {key: body.get("year") for key, body in in_file.items()}
    year_of |= {key: e.body.get("year") for key, e in in_ledger.items()}

    def selected(year: Any) -> bool:
        return period.months is None or any(month.startswith(f"{year}-") for month in period.months)

    n = 0
    for key in sorted(set(in_file) | set(in_ledger), key=lambda k: (str(k[1]), k[0])):
        if not selected(year_of.get(key)):
            continue
        n += 1
        where = f"{key[0].removeprefix('year_')} record {key[1]} ({year_of.get(key)}) in {path}"
        if key not in in_ledger:
            report.mismatch(where, "not in the ledger: added or edited after it was recorded")
        elif key not in in_file:
            report.mismatch(where, f"missing: the ledger recorded it (entry {in_ledger[key].index})")
        elif in_file[key] != in_ledger[key].body:
            report.mismatch(where, f"edited: it differs from ledger entry {in_ledger[key].index}")
    if len(lines) != len(in_file):
        report.mismatch(str(path), f"{len(lines) - len(in_file)} record(s) repeat a number")
    report.checked["year freezes and reopenings"] = n


def verify_home(s: Settings, period: str | None = None, with_dagster: bool = True) -> Report:
    report = Report()
    heads, keys = published_pins(s.published)
    if with_dagster:
        more_heads, more_keys = dagster_pins(s.dagster_home)
        heads, keys = heads + more_heads, keys + more_keys
    entries = check_ledger(report, s, heads, keys)
    if not entries:
        report.note(f"ledger {s.home / 'ledger'}", "note: no entries yet; nothing has been recorded in this home")
    selected = PeriodFilter(period)
    check_archive(report, s, entries, selected)
    check_lake(report, s, entries, selected)
    check_marts(report, s, entries, selected)
    check_published(report, s, entries, selected)
    check_appeals(report, s, entries, selected)
    check_year_freezes(report, s, entries, selected)
    return report


def verify_proof_path(path: Path) -> Report:
    """`govperf verify --proof FILE`: one forwarded revision, offline. When the proof sits in
    its revision folder, the folder's files are checked against the approval entry too."""
    report = Report()
    check_proof_file(report, path)
    if report.ok:
        proof = json.loads(path.read_text(encoding="utf-8"))
        body = json.loads(proof["entry"])["body"]
        folder = path.parent
        key = proof["tree_head"].get("public_key", "")
        report.note(f"proof {path}", f"signed by Ed25519 key {key}: compare it with the key the edition prints")
        if (folder / "manifest.json").is_file():
            pinned = (json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("built_from") or {}).get(
                "public_key"
            )
            if pinned and pinned != key:
                report.mismatch(
                    f"proof {path}",
                    f"signed by key {key[:16]}…, not the key {pinned[:16]}… the edition's manifest prints",
                )
            check_revision_files(report, str(folder), folder, body, "the proof's approval entry")
            if report.ok:
                from pipelines.publish.pdf import approval_record_sha256

                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
                report.note(
                    f"manifest {folder / 'manifest.json'}",
                    f"approval record SHA-256 {approval_record_sha256(manifest)}: compare it with the one the "
                    "edition's PDF prints on its last page (签发记录哈希)",
                )
        report.checked["files"] = len(body["files_sha256"])
    return report


def render_report(report: Report) -> str:
    """Chinese first, like the bulletin: the verdict, each mismatch with its place, the notes."""
    checked = "，".join(f"{name} {n}" for name, n in report.checked.items())
    if report.ok:
        lines = [f"核验通过 (verified): 未发现不符。已核对：{checked}"]
    else:
        lines = [f"核验未通过 (verification failed): {len(report.mismatches)} 处不符。已核对：{checked}"]
        lines += [f"- 不符 {printable(f.where)}: {printable(f.what)}" for f in report.mismatches]
    lines += [f"- 说明 {printable(f.where)}: {printable(f.what)}" for f in report.notes]
    return "\n".join(lines)


class VerificationFailed(Exception):
    """The home's evidence does not match its ledger: nothing is approved from it."""


def refuse_unless_verified(s: Settings) -> Report:
    """Run the whole verification before an approval; refuse on any mismatch."""
    report = verify_home(s)
    if not report.ok:
        shown = "; ".join(f"{f.where}: {f.what}" for f in report.mismatches[:5])
        more = f" (and {len(report.mismatches) - 5} more)" if len(report.mismatches) > 5 else ""
        raise VerificationFailed(
            f"Approval refused: the home fails verification ({len(report.mismatches)} mismatch(es)): {shown}{more}. "
            "See `govperf verify`"
        )
    return report
