"""Approval and publication (审核签发): a draft becomes a published edition.

    published/<monthly|quarterly>/<key>/r<N>/bulletin_<key>.html   the edition, approval shown, no draft mark
    published/<monthly|quarterly>/<key>/r<N>/bulletin_<key>_departments/   its department pages
    published/<monthly|quarterly>/<key>/r<N>/bulletin_<key>.pdf    the edition printed (A4; pdf.py), with the
                                                                   department pages as an appendix on request
    published/<monthly|quarterly>/<key>/r<N>/manifest.json         who approved it and when, the Dagster run
                                                                   that drew it, the catalogue version, a hash
                                                                   per mart of the rows it was built from, a
                                                                   hash per file (the PDF's too), its 文号
    published/document_numbers.jsonl                               every 文号 allocated (document_numbers.py)
    published/index.html                                           every published edition and revision, and
                                                                   which revision of each edition is current

<key> is 2026-03 for a month and 2026-Q1 for a quarter.

A published revision is never rewritten: once renamed into place its files are
made 0444 and its folders 0555 (the index and published/<kind>/<key> stay writable,
so later revisions can be added). Approving a month again publishes a new
revision only if the marts it reads changed; the manifest names the marts that
changed and carries the analyst's note. Dates shown come from the approval record.

approve() is a plain function; `govperf approve` calls it inside a Dagster run
(pipelines/publish/approval.py), whose id it records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from pipelines.ledger.mart_digest import mart_digests
from pipelines.publish.attestation import WarehouseNotAsBuilt, attest, built_from, edition_digests, last_build_or_refuse
from pipelines.publish.bulletin import (
    OFFICIAL_FORM_STYLESHEET,
    STYLESHEET,
    TEMPLATES_DIR,
    catalogue_version_of,
    is_ranked,
    render_edition,
)
from pipelines.publish.config import BulletinConfig, Edition, load_bulletin_config
from pipelines.publish.document_numbers import RegisterDamaged, number_for, version_label
from pipelines.publish.edition_rows import APPEALS_OF_EDITION, query_params
from pipelines.publish.mart_rows import has_table
from pipelines.publish.pdf import PDF_STYLESHEET, PdfNotWritten, write_pdf

# The marts an edition reads, and which of their rows belong to it. Department pages
# read the monthly scores of the trend window and the quarter's leader review, so a
# change there is a change of the edition too; an annual edition shows its quarters.
EDITION_MARTS = {
    "fct_rankings": "(period in ($period, $previous) and period_type = $period_type)"
    " or (period_type = 'month' and period between $trend_from and $last_month)"
    " or ($period_type = 'year' and period_type = 'quarter' and period between $period and $last_month)",
    "fct_department_scores": "(period in ($period, $previous) and period_type = $period_type)"
    " or (period_type = 'month' and period between $trend_from and $last_month)",
    "fct_indicator_values": "period in ($period, $previous, $year_ago, $baseline) and period_type = $period_type",
    "fct_warnings": "period = $period and period_type = $period_type",
    "fct_adjustments": "period = $period and period_type = $period_type",
    "fct_leader_reviews": "period = $quarter",
    "fct_complaint_themes": "period = $period and period_type = $period_type",
    "fct_comment_sentiment": "period = $period and period_type = $period_type",
    "fct_anomalies": "period = $period and period_type = $period_type",
    "fct_indicator_anomalies": "period = $period and period_type = $period_type",
    "fct_target_forecasts": "period = $last_month",
    # 排名变动原因: against the previous period and a year before (whose scores the trend window may not hold).
    "fct_score_changes": "period = $period and period_type = $period_type",
    # The department pages' raw value → score blocks (derivation.py).
    "fct_indicator_reference": "period = $period and period_type = $period_type",
    "fct_indicator_treatment": "period = $period and period_type = $period_type",
    "fct_data_quality": "period between $period and $last_month",
    # 申诉复核: the appeals about the edition's months (and its own, in a quarterly or annual edition).
    "fct_appeals": APPEALS_OF_EDITION,
    "dim_department": "true",
    "dim_indicator": "true",
    "dim_catalogue_node": "true",
}


class PublicationRefused(Exception):
    """The edition cannot be published (unchanged, or nothing to publish)."""


@dataclass(frozen=True)
class PublishedRevision:
    """What one approval published: the approval run's materialization shows these."""

    edition: Edition
    revision: int
    approved_by: str
    folder: Path  # published/<kind>/<key>/r<N>
    html: Path  # the edition's HTML in `folder`
    pdf: Path  # the edition printed (bulletin_<key>.pdf) in `folder`
    pdf_pages: int
    pdf_seconds: float  # the time WeasyPrint took to write it
    document_number: str  # 文号
    manifest_sha256: str  # of manifest.json's bytes
    files: int  # files hashed in the manifest
    run_id: str | None  # the Dagster run that drew it (None outside Dagster)
    # The signed ledger checkpoint the revision was recorded under, once the ledger
    # writes one; the approval run copies it into its metadata as JSON.
    checkpoint: dict[str, Any] = field(default_factory=dict)


READ_ONLY_FILE = 0o444
READ_ONLY_FOLDER = 0o555


def _edition_params(edition: Edition, config: BulletinConfig) -> dict[str, Any]:
    baseline = config.baseline_of(edition) or edition
    return query_params(edition, config) | {"baseline": baseline.period}


def mart_hashes(
    con: duckdb.DuckDBPyConnection, edition: Edition, config: BulletinConfig, build_marts: dict | None = None
) -> dict[str, Any]:
    """The digests of the marts' periods the edition is built from (the ledger's canonical
    per-period digests: those of the last dbt build, or recomputed when none is given),
    and of the bulletin settings and the templates."""
    params = _edition_params(edition, config)
    if build_marts is None:
        build_marts = mart_digests(con, [t for t in EDITION_MARTS if has_table(con, t)])
    hashes: dict[str, Any] = edition_digests(con, build_marts, EDITION_MARTS, params)
    # What the edition shows also depends on the bulletin settings and the templates.
    hashes["bulletin.yaml"] = hashlib.sha256(config.model_dump_json().encode()).hexdigest()
    layout = hashlib.sha256()
    for path in sorted([*TEMPLATES_DIR.glob("*.j2"), STYLESHEET, OFFICIAL_FORM_STYLESHEET, PDF_STYLESHEET]):
        layout.update(path.name.encode() + b"\0" + path.read_bytes())
    hashes["templates"] = layout.hexdigest()
    return hashes


def _home_relative(path: Path, home: Path) -> str:
    try:
        return path.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def revisions(published: Path, edition: Edition) -> list[dict[str, Any]]:
    """The edition's published revisions, oldest first, each with its manifest."""
    folder = published / edition.folder / edition.key
    found = []
    for manifest in sorted(folder.glob("r*/manifest.json"), key=lambda p: int(p.parent.name[1:])):
        found.append(json.loads(manifest.read_text(encoding="utf-8")) | {"folder": manifest.parent})
    return found


def approve(
    con: duckdb.DuckDBPyConnection,
    edition: Edition,
    published: Path,
    approved_by: str,
    approved_at: dt.datetime,
    note: str = "",
    config: BulletinConfig | None = None,
    home: Path | None = None,
    run_id: str | None = None,
    with_departments: bool = False,
    appeals: dict | None = None,
) -> PublishedRevision:
    """Publish `edition` as approved by `approved_by`, drawn by the Dagster run `run_id`
    (recorded in the manifest and the footer); return what was published. The edition is
    printed to PDF too, its department pages as an appendix `with_departments`.
    `appeals`: its appeal window, its appeals' outcomes and what the approver forced it
    over (pipelines/publish/approval.py), recorded in the manifest.

    `home` holds the ledger: the marts must match its last dbt build entry, and the
    approval is recorded there."""
    from pipelines.settings import settings

    if config is None:
        config = load_bulletin_config(settings().reference_dir)
    home = home or settings().home
    if not is_ranked(con, edition):
        raise PublicationRefused(f"{edition.key}: no ranking in the marts; nothing to publish")
    try:
        build = last_build_or_refuse(con, home)
        provenance = built_from(home, build)
    except WarehouseNotAsBuilt as refusal:
        raise PublicationRefused(f"{edition.key}: {refusal}") from None
    hashes = mart_hashes(con, edition, config, build.body["marts"])
    earlier = revisions(published, edition)
    changed = []
    if earlier:
        last = earlier[-1]
        changed = sorted(t for t in hashes if last["mart_hashes"].get(t) != hashes[t])
        if not changed:
            raise PublicationRefused(
                f"{edition.key}: revision {last['revision']} is already published from the same mart rows; "
                "nothing changed, so no new revision"
            )
        if not note.strip():
            raise PublicationRefused(
                f"{edition.key}: the data changed since revision {last['revision']} ({', '.join(changed)}); "
                "say what changed with --note"
            )
    parent = published / edition.folder / edition.key
    revision = len(earlier) + 1
    folder = parent / f"r{revision}"
    # Written in a scratch folder and renamed into place: a failed approval leaves no
    # half revision behind, and a published revision is never rewritten.
    if folder.exists():
        raise PublicationRefused(f"{folder} exists without a manifest; move it aside and approve again")
    try:
        # Taken before anything is drawn, and never given back: see document_numbers.py.
        number = number_for(published, config.document_number, edition, earlier, approved_by, approved_at)
    except RegisterDamaged as damaged:
        raise PublicationRefused(f"{edition.key}: {damaged}") from None
    scratch = parent / f".r{revision}.{os.getpid()}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    approval = {
        "document_number": number,
        "version_label": version_label(revision),
        "period": edition.key,
        "period_type": edition.period_type,
        "revision": revision,
        "approved_by": approved_by,
        "approved_at": approved_at.strftime("%Y-%m-%d %H:%M"),
        "note": note.strip() or ("首次发布" if revision == 1 else ""),
        "changed_marts": changed,
        "catalogue_version": catalogue_version_of(con, edition),
        "mart_hashes": hashes,
        "built_from": provenance,
    }
    if run_id is not None:
        approval["run_id"] = run_id
    if appeals is not None:
        approval["appeals"] = appeals
    try:
        path = render_edition(con, edition, scratch, approval=approval, config=config)
        pages = sorted((scratch / f"{edition.stem}_departments").glob("*.html")) if with_departments else []
        pdf = write_pdf(path, scratch / f"{edition.stem}.pdf", approval, f"{edition.label}{config.title}", pages)
        approval["edition_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        # Every file of the revision, the PDF too (manifest.json and proof.json come after).
        approval["files_sha256"] = {
            file.relative_to(scratch).as_posix(): hashlib.sha256(file.read_bytes()).hexdigest()
            for file in sorted(scratch.rglob("*"))
            if file.is_file()
        }
        manifest = (json.dumps(approval, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
        (scratch / "manifest.json").write_bytes(manifest)
        # Recorded and signed before the revision appears: a revision is never unattested.
        head = attest(home, approval, hashlib.sha256(manifest).hexdigest(), _home_relative(folder, home), scratch)
        os.rename(scratch, folder)  # fails, rather than overwrite, if the folder appeared meanwhile
    except PdfNotWritten as error:
        raise PublicationRefused(f"{edition.key}: {error}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seal_read_only(folder)
    write_index(published)
    return PublishedRevision(
        edition=edition,
        revision=revision,
        approved_by=approved_by,
        folder=folder,
        html=folder / path.name,
        pdf=folder / pdf.path.name,
        pdf_pages=pdf.pages,
        pdf_seconds=round(pdf.seconds, 2),
        document_number=number,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        files=len(approval["files_sha256"]),
        run_id=run_id,
        checkpoint=head,
    )


def seal_read_only(folder: Path) -> None:
    """Files 0444 and folders 0555, deepest first: a published revision is not for
    editing. (root ignores these bits; verification, not the mode, catches an edit.)"""
    for root, _folders, files in os.walk(folder, topdown=False):
        for name in files:
            os.chmod(os.path.join(root, name), READ_ONLY_FILE)
        os.chmod(root, READ_ONLY_FOLDER)


INDEX = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>绩效通报归档</title>
<style>body{font-family:"Noto Sans CJK SC","Noto Serif CJK SC",sans-serif;margin:2rem}
table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3rem .6rem;text-align:left}</style>
</head><body>
<h1>绩效通报归档</h1>
<table id="editions"><thead><tr><th>统计期</th><th>类型</th><th>版次</th><th>状态</th><th>签发人</th><th>签发时间</th><th>说明</th><th>指标体系版本</th></tr></thead>
<tbody>
{% for e in editions %}<tr><td><a href="{{ e.href }}">{{ e.label }}</a></td><td>{{ e.kind }}</td><td>第 {{ e.revision }} 版</td>
<td class="{{ 'current' if e.superseded_by is none else 'superseded' }}">{{ "现行" if e.superseded_by is none else "已被第 %d 版取代" % e.superseded_by }}</td><td>{{ e.approved_by }}</td>
<td>{{ e.approved_at }}</td><td>{{ e.note }}</td><td>{{ e.catalogue_version or "—" }}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""
)


def write_index(published: Path) -> Path:
    """published/index.html: every edition and revision, newest period first; each
    revision is marked current (现行) or superseded by the revision after it."""
    path = published / "index.html"
    path.write_text(index_text(published), encoding="utf-8", newline="\n")
    return path


def index_text(published: Path) -> str:
    """The archive index as the published manifests make it (verify compares the file with it)."""
    editions = []
    for manifest in published.glob("*/*/r*/manifest.json"):
        record = json.loads(manifest.read_text(encoding="utf-8"))
        edition = Edition.parse(record["period"])
        record |= {
            "href": f"{edition.folder}/{edition.key}/r{record['revision']}/{edition.stem}.html",
            "label": edition.label,
            "kind": edition.kind_label,
            "sort": (edition.end, edition.months, record["revision"]),
        }
        editions.append(record)
    editions.sort(key=lambda e: e["sort"], reverse=True)
    later: dict[str, int] = {}  # edition key -> the revision after the one at hand (newest first)
    for record in editions:
        record["superseded_by"] = later.get(record["period"])
        later[record["period"]] = record["revision"]
    return INDEX.render(editions=editions)
