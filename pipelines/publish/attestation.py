"""What ties a published revision to the ledger (存证).

Before an approval: the warehouse must still hold exactly what the last dbt build
recorded (a hand-edited mart never becomes a revision), and the manifest quotes
that build's digests for the periods the edition reads.

The revision carries, in its manifest and footer, the public key and the signed
tree head of the run that built its marts. The approval itself is then an entry
of the ledger, signed in a later head; `proof.json` beside the manifest holds that
entry, its inclusion proof and the head, so the revision can be checked on its own
(docs/verify_proof.py) and nothing has to contain its own hash.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from pipelines.ledger import events
from pipelines.ledger.mart_digest import WHOLE, differences, mart_digests, period_key
from pipelines.ledger.proof import build_proof, write_proof

PROOF_FILE = "proof.json"


class WarehouseNotAsBuilt(Exception):
    """The marts differ from what the last dbt build recorded in the ledger."""


def last_build_or_refuse(con: duckdb.DuckDBPyConnection, home: Path):
    """The last dbt build entry, after checking the warehouse against it."""
    build = events.last_build(home)
    if build is None:
        raise WarehouseNotAsBuilt(
            f"the ledger in {home / 'ledger'} records no dbt build: run `govperf run` for the period before approving"
        )
    problems = differences(build.body["marts"], mart_digests(con))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise WarehouseNotAsBuilt(
            f"the warehouse no longer matches the last dbt build (ledger entry {build.index}): {shown}. "
            "Nothing is published from marts changed outside dbt; run `govperf run` for the period again"
        )
    return build


def edition_digests(
    con: duckdb.DuckDBPyConnection, build_marts: dict, marts: dict[str, str], params: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """{mart: {period key: sha256}} of the periods the edition reads (marts: mart → where clause),
    taken from the build entry's digests: the manifest reuses the ledger's hashes."""
    hashes: dict[str, dict[str, str]] = {}
    for table, where in marts.items():
        if table not in build_marts:
            continue
        groups = build_marts[table]
        if list(groups) == [WHOLE]:
            keys = [WHOLE]
        else:
            columns = {
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ?",
                    [table],
                ).fetchall()
            }
            period_type = "period_type" if "period_type" in columns else "null"
            used = set(re.findall(r"\$(\w+)", where))
            rows = con.execute(
                f"select distinct {period_type}, period from marts.{table} where {where}",
                {name: value for name, value in params.items() if name in used},
            ).fetchall()
            keys = sorted(period_key(t, p) for t, p in rows)
        hashes[table] = {key: groups[key]["sha256"] for key in keys if key in groups}
    return hashes


def built_from(home: Path, build) -> dict[str, Any]:
    """The manifest's record of the build behind the revision: its entry and signed head."""
    # The build's run signs right after it. An approval never signs a build entry in its
    # place: an entry appended by hand, after the last signed head, must not be vouched for.
    head = events.head_after(events.ledger_of(home), build.index)
    if head is None:
        raise WarehouseNotAsBuilt(
            f"the last dbt build (ledger entry {build.index}) is covered by no signed checkpoint: its run did not "
            "finish, or the entry was added by hand. Run `govperf run` for the period again"
        )
    return {
        "dbt_build_entry": build.index,
        "dbt_run_id": build.body.get("run_id"),
        "tree_head": head,
        "public_key": head["public_key"],
    }


def attest(home: Path, approval: dict[str, Any], manifest_sha256: str, folder: str, scratch: Path) -> dict[str, Any]:
    """Append the approval entry, sign a head that includes it, and write proof.json into
    the scratch folder of the revision. Returns the signed head."""
    ledger = events.ledger_of(home)
    entry = ledger.append(
        "approval",
        {
            "period": approval["period"],
            "period_type": approval["period_type"],
            "revision": approval["revision"],
            "approved_by": approval["approved_by"],
            "approved_at": approval["approved_at"],
            "run_id": approval.get("run_id"),
            "note": approval["note"],
            "document_number": approval.get("document_number"),
            "folder": folder,
            "manifest_sha256": manifest_sha256,
            "files_sha256": approval["files_sha256"],
        },
    )
    head = ledger.checkpoint(events.signing_key())
    write_proof(scratch / PROOF_FILE, build_proof(ledger, entry.index, head))
    return head.to_dict()
