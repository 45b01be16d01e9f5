"""Approval and publication (审核签发): a draft becomes a published edition.

    published/monthly/YYYY-MM/r<N>/bulletin_YYYY-MM.html   the edition, approval shown, no draft mark
    published/monthly/YYYY-MM/r<N>/manifest.json           who approved it and when, the catalogue
                                                           version, and a hash per mart of the rows
                                                           it was built from
    published/index.html                                   every published edition and revision

A published revision is never rewritten. Approving a month again publishes a new
revision only if the marts it reads changed; the manifest names the marts that
changed and carries the analyst's note. Dates shown come from the approval record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from pipelines.publish.bulletin import catalogue_version_of, render_monthly_bulletin

# The marts a monthly edition reads, and which of their rows belong to a month.
EDITION_MARTS = {
    "fct_rankings": "period = $period and period_type = 'month'",
    "fct_department_scores": "period = $period and period_type = 'month'",
    "fct_indicator_values": "period = $period and period_type = 'month'",
    "fct_warnings": "period = $period and period_type = 'month'",
    "fct_data_quality": "period = $period",
    "dim_department": "true",
    "dim_indicator": "true",
    "dim_catalogue_node": "true",
}


class PublicationRefused(Exception):
    """The edition cannot be published (unchanged, or nothing to publish)."""


def mart_hashes(con: duckdb.DuckDBPyConnection, period: dt.date) -> dict[str, str]:
    """SHA-256 of each mart's rows for the month, in a fixed order and text form."""
    hashes = {}
    for table, where in EDITION_MARTS.items():
        sql = f"select * from marts.{table} where {where} order by all"
        rows = con.execute(sql, {"period": period} if "$period" in where else {}).fetchall()
        digest = hashlib.sha256()
        for row in rows:
            digest.update(repr(row).encode())
            digest.update(b"\n")
        hashes[table] = digest.hexdigest()
    return hashes


def revisions(published: Path, period: dt.date) -> list[dict[str, Any]]:
    """The month's published revisions, oldest first, each with its manifest."""
    folder = published / "monthly" / f"{period:%Y-%m}"
    found = []
    for manifest in sorted(folder.glob("r*/manifest.json"), key=lambda p: int(p.parent.name[1:])):
        found.append(json.loads(manifest.read_text(encoding="utf-8")) | {"folder": manifest.parent})
    return found


def approve(
    con: duckdb.DuckDBPyConnection,
    period: dt.date,
    published: Path,
    approved_by: str,
    approved_at: dt.datetime,
    note: str = "",
) -> Path:
    """Publish the month's edition as approved by `approved_by`; return its path."""
    if not con.execute(
        "select count(*) from marts.fct_rankings where period = ? and period_type = 'month'", [period]
    ).fetchall()[0][0]:
        raise PublicationRefused(f"{period:%Y-%m}: no ranking in the marts; nothing to publish")
    hashes = mart_hashes(con, period)
    earlier = revisions(published, period)
    changed = []
    if earlier:
        last = earlier[-1]
        changed = sorted(t for t in hashes if last["mart_hashes"].get(t) != hashes[t])
        if not changed:
            raise PublicationRefused(
                f"{period:%Y-%m}: revision {last['revision']} is already published from the same mart rows; "
                "nothing changed, so no new revision"
            )
        if not note.strip():
            raise PublicationRefused(
                f"{period:%Y-%m}: the data changed since revision {last['revision']} ({', '.join(changed)}); "
                "say what changed with --note"
            )
    revision = len(earlier) + 1
    folder = published / "monthly" / f"{period:%Y-%m}" / f"r{revision}"
    folder.mkdir(parents=True, exist_ok=False)  # a published revision is never rewritten
    approval = {
        "period": f"{period:%Y-%m}",
        "revision": revision,
        "approved_by": approved_by,
        "approved_at": approved_at.strftime("%Y-%m-%d %H:%M"),
        "note": note.strip() or ("首次发布" if revision == 1 else ""),
        "changed_marts": changed,
        "catalogue_version": catalogue_version_of(con, period),
        "mart_hashes": hashes,
    }
    edition = render_monthly_bulletin(con, period, folder, approval=approval)
    approval["edition_sha256"] = hashlib.sha256(edition.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(approval, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    write_index(published)
    return edition


INDEX = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>绩效通报归档</title>
<style>body{font-family:"Noto Sans CJK SC","Noto Serif CJK SC",sans-serif;margin:2rem}
table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3rem .6rem;text-align:left}</style>
</head><body>
<h1>绩效通报归档</h1>
<table id="editions"><thead><tr><th>统计期</th><th>版次</th><th>签发人</th><th>签发时间</th><th>说明</th><th>指标体系版本</th></tr></thead>
<tbody>
{% for e in editions %}<tr><td><a href="{{ e.href }}">{{ e.period }}</a></td><td>第 {{ e.revision }} 版</td><td>{{ e.approved_by }}</td>
<td>{{ e.approved_at }}</td><td>{{ e.note }}</td><td>{{ e.catalogue_version or "—" }}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""
)


def write_index(published: Path) -> Path:
    """published/index.html: every edition and revision, newest period first."""
    editions = []
    for manifest in published.glob("monthly/*/r*/manifest.json"):
        record = json.loads(manifest.read_text(encoding="utf-8"))
        record["href"] = f"monthly/{record['period']}/r{record['revision']}/bulletin_{record['period']}.html"
        editions.append(record)
    editions.sort(key=lambda e: (e["period"], e["revision"]), reverse=True)
    path = published / "index.html"
    path.write_text(INDEX.render(editions=editions), encoding="utf-8", newline="\n")
    return path
