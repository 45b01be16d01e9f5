"""`govperf explain`: a published number traced from the top down, from the marts.

rank ← composite (Σ weight × dimension score, plus 加减分) ← each aggregate from its
children ← each indicator's score from its value through the normalisation
(pipelines/publish/derivation.py) ← the value from its formula over the source
rows, with the count at each inclusion rule (marts.fct_indicator_evidence,
dim_evidence_rule) ← each row's archived original (file hash, archive path, line).

A reader of the marts only: it opens the warehouse read-only, and the rows it
writes (--rows) are the warehouse's masked rows, never the archived originals."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from pipelines.publish import derivation, edition_rows
from pipelines.publish.config import Edition
from pipelines.publish.score_format import ScoreFormat

Row = dict[str, Any]
COMPOSITE = "composite"


class ExplainError(ValueError):
    """An unknown department, indicator or period: said in one sentence."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Iterable[Any] = ()) -> list[Row]:
    cursor = con.execute(sql, list(params))
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def explain(
    con: duckdb.DuckDBPyConnection,
    edition: Edition,
    department_id: str,
    home: Path,
    indicator_id: str | None = None,
) -> Row:
    """The whole derivation of one department's numbers in one period, as plain data."""
    key = (edition.period, edition.period_type)
    ranking = _rows(
        con,
        "SELECT * FROM marts.fct_rankings WHERE period = ? AND period_type = ? AND department_id = ?",
        [*key, department_id],
    )
    if not ranking:
        _refuse_unknown(con, edition, department_id)
    ranking = ranking[0]
    shown = edition_rows.score_format(con, {"version": ranking["catalogue_version"]})  # its decimals and scale
    cells = derivation.derivations(con, *key, department_id, shown)
    if indicator_id is not None and (department_id, indicator_id) not in cells:
        known = sorted(i for _, i in cells)
        raise ExplainError(
            f"indicator {indicator_id!r} is not scored for {department_id} in {edition.key}; "
            f"its indicators are: {', '.join(known)}"
        )
    nodes = _nodes(con, ranking["catalogue_version"])
    scores = {
        r["dimension"]: r
        for r in _rows(
            con,
            "SELECT dimension, score, rank FROM marts.fct_department_scores"
            " WHERE period = ? AND period_type = ? AND department_id = ?",
            [*key, department_id],
        )
    }
    wanted = [indicator_id] if indicator_id else sorted(i for _, i in cells)
    # A year built up from its quarters (months) is not the tree over its scores (§9b).
    built_up = _built_up(con, edition, ranking) if ranking.get("base_method") in ("quarters", "months") else None
    return {
        "period": edition.key,
        "period_label": edition.label,
        "period_type": edition.period_type,
        "department_id": department_id,
        "department_name": _department_name(con, department_id, edition),
        "ranking": _ranking(con, edition, ranking, shown),
        "score_format": shown,
        "built_up": built_up,
        "tree": None if built_up else _tree(COMPOSITE, nodes, scores, cells, ranking["base_score"]),
        "indicators": [_indicator(con, edition, department_id, cells[(department_id, i)], home) for i in wanted],
    }


def _refuse_unknown(con: duckdb.DuckDBPyConnection, edition: Edition, department_id: str) -> None:
    periods = [
        r["period"]
        for r in _rows(
            con, "SELECT DISTINCT period FROM marts.fct_rankings WHERE period_type = ?", [edition.period_type]
        )
    ]
    if edition.period not in periods:
        have = ", ".join(Edition(edition.period_type, p).key for p in sorted(periods)) or "none"
        raise ExplainError(f"period {edition.key} is not ranked in the warehouse; ranked {edition.kind_label}: {have}")
    known = _rows(con, "SELECT * FROM marts.dim_department WHERE department_id = ?", [department_id])
    if not known:
        raise ExplainError(f"department {department_id!r} is not in marts.dim_department")
    successor = known[0].get("year_scored_with")
    if edition.period_type == "year" and successor and known[0]["valid_to"].year == edition.period.year:
        raise ExplainError(
            f"department {department_id} merged during {edition.key}: its year counts with {successor}'s"
            f" (annual.merged_departments: successor); try --department {successor}"
        )
    raise ExplainError(f"department {department_id} is not ranked in {edition.key} (not in office, or no data)")


def _department_name(con: duckdb.DuckDBPyConnection, department_id: str, edition: Edition) -> str:
    rows = _rows(
        con,
        "SELECT department_name FROM marts.dim_department WHERE department_id = ?"
        " ORDER BY coalesce(valid_from <= ? AND coalesce(valid_to >= ?, TRUE), FALSE) DESC, valid_from DESC",
        [department_id, edition.end, edition.period],
    )
    return rows[0]["department_name"] if rows else department_id


def _ranking(con: duckdb.DuckDBPyConnection, edition: Edition, ranking: Row, shown: ScoreFormat) -> Row:
    """The rank as taken: on the composite at the version's rank_decimals, in its round_mode (`shown`)."""
    key = [edition.period, edition.period_type]
    rounded = shown.ranked(ranking["composite_score"])
    scores = [
        r["composite_score"]
        for r in _rows(con, "SELECT composite_score FROM marts.fct_rankings WHERE period = ? AND period_type = ?", key)
    ]
    ahead = {"ahead": sum(shown.ranked(score) > rounded for score in scores), "n": len(scores)}
    items = _rows(
        con,
        "SELECT kind, points, reason, evidence_ref, file_hash, source_line FROM marts.fct_adjustments"
        " WHERE period = ? AND period_type = ? AND department_id = ? ORDER BY kind, source_line",
        [*key, ranking["department_id"]],
    )
    return {
        "rank": ranking["rank"],
        "n_ranked": ahead["n"],
        "departments_ahead": ahead["ahead"],
        "composite_score": ranking["composite_score"],
        "composite_rounded": rounded,
        "base_score": ranking["base_score"],
        "bonus_points": ranking["bonus_points"],
        "veto_reason": ranking["veto_reason"],
        "grade": ranking["grade"],
        "adjustments": items,
    }


def _built_up(con: duckdb.DuckDBPyConnection, edition: Edition, ranking: Row) -> Row:
    """A built-up year's base = (1 − s) × B + s × A, with the periods B was made from."""
    period_type = "quarter" if ranking["base_method"] == "quarters" else "month"
    periods = _rows(
        con,
        "SELECT period, base_score FROM marts.fct_rankings WHERE period_type = ? AND department_id = ?"
        " AND period BETWEEN ? AND ? ORDER BY period",
        [period_type, ranking["department_id"], edition.period, edition.last_month],
    )
    return {
        "base_score": ranking["base_score"],
        "built_from": ranking["built_from"],
        "annual_part": ranking["annual_part"],
        "annual_share": ranking["annual_share"],
        "periods": [{"label": Edition(period_type, p["period"]).label, "base_score": p["base_score"]} for p in periods],
    }


def _nodes(con: duckdb.DuckDBPyConnection, version: str | None) -> dict[str, Row]:
    """Every node of the catalogue version, aggregates and indicators, by id."""
    nodes = {
        r["node_id"]: r | {"kind": "aggregate"}
        for r in _rows(
            con,
            "SELECT node_id, node_name AS name, parent_id, weight, aggregation FROM marts.dim_catalogue_node"
            " WHERE catalogue_version IS NOT DISTINCT FROM ?",
            [version],
        )
    }
    for r in _rows(
        con,
        "SELECT indicator_id AS node_id, indicator_name AS name, dimension AS parent_id, weight"
        " FROM marts.dim_indicator WHERE catalogue_version IS NOT DISTINCT FROM ?",
        [version],
    ):
        nodes[r["node_id"]] = r | {"kind": "indicator", "aggregation": None}
    return nodes


def _tree(node_id: str, nodes: dict[str, Row], scores: dict[str, Row], cells: dict, base: float | None) -> Row:
    """A node and its children, with each child's weight re-shared among the children
    that have a score (a missing child's weight goes to the others)."""
    node = nodes[node_id]
    children = []
    for child_id in sorted(n for n, r in nodes.items() if r["parent_id"] == node_id):
        child = nodes[child_id]
        if child["kind"] == "indicator":
            cell = next((c for (_, i), c in cells.items() if i == child_id), None)
            score = cell["score"] if cell else None
            children.append({"node_id": child_id, "name": child["name"], "kind": "indicator", "score": score})
        else:
            subtree = _tree(child_id, nodes, scores, cells, None)
            children.append(subtree)
        children[-1]["weight"] = child["weight"]
    present = sum(c["weight"] or 0 for c in children if c["score"] is not None)
    for c in children:
        c["effective_weight"] = (c["weight"] / present) if c["score"] is not None and present else None
    own = scores.get(node_id, {})
    return {
        "node_id": node_id,
        "name": node["name"],
        "kind": "aggregate",
        "aggregation": node["aggregation"] or "arithmetic",
        "score": base if base is not None else own.get("score"),
        "rank": own.get("rank"),
        "children": children,
    }


def _indicator(con: duckdb.DuckDBPyConnection, edition: Edition, department_id: str, cell: Row, home: Path) -> Row:
    indicator_id = cell["indicator_id"]
    evidence = _rows(
        con,
        "SELECT source, file_hash, source_line, unit_key, n_obs_weight, steps_passed, included,"
        " in_denominator, in_numerator, rule_step, rule_label FROM marts.fct_indicator_evidence"
        " WHERE period = ? AND period_type = ? AND department_id = ? AND indicator_id = ?"
        " ORDER BY source, file_hash, source_line",
        [edition.period, edition.period_type, department_id, indicator_id],
    )
    sources = sorted({e["source"] for e in evidence})
    rules = _rows(
        con,
        "SELECT * FROM marts.dim_evidence_rule WHERE indicator_id = ?"
        " OR (indicator_id = '*' AND source IN (SELECT unnest(?)))"
        " ORDER BY rule_order, part_order, step_number",
        [indicator_id, sources],
    )
    files = _files(con, {e["file_hash"] for e in evidence if e["included"]}, home)
    parts = []
    for source in dict.fromkeys(r["source"] for r in rules):
        steps = [r for r in rules if r["source"] == source]
        rows = [e for e in evidence if e["source"] == source]
        parts.append(
            {
                "source": source,
                "relation": steps[0]["relation"],
                "unit": steps[0]["unit_key"],
                "rows_considered": len(rows),
                "steps": [
                    {
                        "step": s["step_number"],
                        "label": s["step_label"],
                        "predicate": s["predicate"],
                        "role": s["step_role"],
                        "count": _units(r for r in rows if r["steps_passed"] >= s["step_number"]),
                    }
                    for s in steps
                ],
                "files": [
                    files[h]
                    | {
                        "lines": [r["source_line"] for r in rows if r["file_hash"] == h and r["included"]],
                        "numerator_lines": [
                            r["source_line"] for r in rows if r["file_hash"] == h and r["in_numerator"]
                        ],
                    }
                    for h in sorted(
                        {r["file_hash"] for r in rows if r["included"]}, key=lambda h: (files[h]["file_name"] or "", h)
                    )
                ],
            }
        )
    return {
        "indicator_id": indicator_id,
        "name": cell["indicator_name"],
        "unit": cell["unit"],
        "raw_value": cell["raw_value"],
        "n_obs": cell["n_obs"],
        "score": cell["score"],
        "derivation": cell["steps"],
        "reference": {
            k: cell[k]
            for k in ("normalisation", "direction", "set_n", "set_min", "set_max", "set_mean", "set_sd", "target")
        }
        | {"goalposts": [cell["goalpost_lo"], cell["goalpost_hi"]]},
        "formula": rules[0]["formula"] if rules else None,
        "formula_label": rules[0]["formula_label"] if rules else "由填报数值或上级指标得出（无逐行证据）",
        "parts": parts,
    }


def _units(rows: Iterable[Row]) -> int:
    """How many units (rows, or distinct unit keys such as respondents) the rows are."""
    units = {r["unit_key"] or f"{r['file_hash']}:{r['source_line']}" for r in rows}
    return len(units)


def _files(con: duckdb.DuckDBPyConnection, hashes: set[str], home: Path) -> dict[str, Row]:
    """Each file's name and its archived original as an absolute path. file_loads
    keeps archive_path relative to GOVPERF_HOME (so a home can move); it is resolved
    here against the home being explained."""
    found = {
        r["file_hash"]: r
        for r in _rows(
            con,
            "SELECT file_hash, min(file_name) AS file_name, min(archive_path) AS archive_path, min(source) AS source"
            " FROM staging.stg_ingest__file_loads WHERE file_hash IN (SELECT unnest(?)) GROUP BY file_hash",
            [sorted(hashes)],
        )
    }
    files = {}
    for file_hash in hashes:
        row = found.get(file_hash, {"file_name": None, "archive_path": None})
        relative = row["archive_path"]
        absolute = (home / relative).resolve() if relative else None
        files[file_hash] = {
            "file_hash": file_hash,
            "file_name": row["file_name"],
            "archive_path": str(absolute) if absolute else None,
            "archived": bool(absolute and absolute.is_file()),
        }
    return files


def write_rows(con: duckdb.DuckDBPyConnection, explanation: Mapping[str, Any], target: Path) -> int:
    """Write the contributing rows, as the warehouse holds them (masked), to a CSV:
    one line per source row and indicator, with the rule that counted it."""
    out: list[Row] = []
    for indicator in explanation["indicators"]:
        for part in indicator["parts"]:
            wanted = [(f["file_hash"], line) for f in part["files"] for line in f["lines"]]
            if not wanted:
                continue
            rows = _rows(
                con,
                f"""
                SELECT * FROM staging.stg_lake__{part["source"]}
                WHERE (file_hash, source_line) IN (
                    SELECT (w.h, w.l) FROM (SELECT unnest(?) AS h, unnest(?) AS l) AS w)
                ORDER BY file_hash, source_line
                """,
                [[h for h, _ in wanted], [line for _, line in wanted]],
            )
            for row in rows:
                out.append({"indicator_id": indicator["indicator_id"], "source": part["source"]} | row)
    columns = list(dict.fromkeys(c for row in out for c in row))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["indicator_id", "source"])
        writer.writeheader()
        for row in out:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return len(out)


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def as_json(explanation: Mapping[str, Any]) -> Any:
    """The explanation with dates as ISO text, for --json (the score format as its settings)."""
    if isinstance(explanation, ScoreFormat):
        return as_json(dataclasses.asdict(explanation))
    if isinstance(explanation, Mapping):
        return {k: as_json(v) for k, v in explanation.items()}
    if isinstance(explanation, list):
        return [as_json(v) for v in explanation]
    if isinstance(explanation, (dt.date, dt.datetime)):
        return explanation.isoformat()
    if hasattr(explanation, "__float__") and not isinstance(explanation, (int, float, bool)):
        return float(explanation)
    return explanation
