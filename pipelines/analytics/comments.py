"""Scoring the landed comments: one score file per landed file, beside the lake.

    lake/<source>/<YYYY-MM>/<sha256>.parquet               a landed file (ingest)
    lake/comment_sentiment/<source>/<YYYY-MM>_<sha256>.parquet   its comments' scores

A score file has one row per line of the landed file with a non-empty text
(_source, _file_hash, _period, _line, negative_p, and the text's fingerprint for the
copied-comment screen: text_chars, text_key); dbt's staging joins it to the rows on
those. Its Parquet metadata names the model that scored it and the SHA-256
of the landed file it was scored from (a landing rewritten, for example under new
masking rules, is other bytes), so scoring is incremental by content: what this
model already scored is left alone, whatever month a run covers. Content, not
modification times: the same landings give the same score files, byte for byte, in
any home (a rerun after a crash equals a clean run). Texts are scored after masking, as landed; the masking tokens
([姓名], [手机号]…) carry no tone and are taken out first.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.analytics.sentiment import SentimentModel
from pipelines.ingest import masking
from pipelines.ingest.land import SENTIMENT_FOLDER, SENTIMENT_SCHEMA
from pipelines.ledger.events import file_sha256
from pipelines.parquet import write_table
from pipelines.warehouse import duckdb_connection

# The free-text column of each source that has one (canonical names, after masking).
TEXT_COLUMNS = {"service_transactions": "comment", "survey_responses": "comment", "hotline_complaints": "content"}
MASK_TOKENS = (masking.ID_TOKEN, masking.MOBILE_TOKEN, masking.LANDLINE_TOKEN, masking.NAME_TOKEN)
# What a score file holds beyond the model's output; changing either rewrites every score file.
FINGERPRINT_VERSION = "1"


@dataclass(frozen=True)
class Scored:
    source: str
    files_scored: int  # landed files scored by this call
    files_current: int  # landed files already scored by this model
    comments: int  # texts scored by this call


def score_folder(lake: Path) -> Path:
    return lake / SENTIMENT_FOLDER


def landed_files(lake: Path, source: str) -> list[Path]:
    """The landed files of `source` now current in the lake (not history, not the schema file)."""
    folder = lake / source
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*/*.parquet") if p.parent.name != "_schema")


def _identity(model: SentimentModel, landed: Path) -> dict[bytes, bytes]:
    return {
        b"govperf_model": model.version.encode(),
        b"govperf_fingerprint": FINGERPRINT_VERSION.encode(),
        b"govperf_landed_sha256": file_sha256(landed).encode(),
    }


def _is_current(target: Path, identity: dict[bytes, bytes]) -> bool:
    try:
        metadata = pq.read_schema(target).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return all(metadata.get(key) == value for key, value in identity.items())


def _strip_masks(text: str) -> str:
    for token in MASK_TOKENS:
        text = text.replace(token, " ")
    return text


def fingerprint(text: str) -> tuple[int, str]:
    """(characters, key) of a text as the copied-comment screen compares texts: the same
    praise pasted with other spacing, punctuation, width or case is the same text."""
    kept = "".join(
        c for c in unicodedata.normalize("NFKC", _strip_masks(text)).lower() if unicodedata.category(c)[0] not in "ZPSC"
    )
    return len(kept), hashlib.sha256(kept.encode()).hexdigest()[:16]


def score_file(model: SentimentModel, source: str, landed: Path, target: Path) -> int:
    """Score the texts of one landed file into `target`; returns how many were scored."""
    column = TEXT_COLUMNS[source]
    identity = _identity(model, landed)  # taken before reading: a rewrite meanwhile is seen next time
    con = duckdb_connection()
    try:
        rows = con.execute(
            f"""
            select _file_hash, _period, _line, min({column}) as text
            from read_parquet(?)
            where length(trim(coalesce({column}, ''))) > 0
            group by 1, 2, 3
            order by _line
            """,
            [str(landed)],
        ).fetchall()
    finally:
        con.close()
    scores = model.negative_probability([_strip_masks(text) for *_key, text in rows])
    prints = [fingerprint(text) for *_key, text in rows]
    table = pa.table(
        {
            "_source": [source] * len(rows),
            "_file_hash": [r[0] for r in rows],
            "_period": pa.array([r[1] for r in rows], pa.date32()),
            "_line": pa.array([r[2] for r in rows], pa.int64()),
            "negative_p": pa.array([None if s != s else float(s) for s in scores], pa.float64()),
            "text_chars": pa.array([chars for chars, _key in prints], pa.int64()),
            "text_key": [key for _chars, key in prints],
        },
        schema=SENTIMENT_SCHEMA,
    ).replace_schema_metadata(identity)
    write_table(table, target)
    return len(rows)


def score_source(model: SentimentModel, lake: Path, source: str) -> Scored:
    """Score every landed file of `source` that this model has not scored as it now is."""
    scored = current = comments = 0
    for landed in landed_files(lake, source):
        target = score_folder(lake) / source / f"{landed.parent.name}_{landed.name}"
        try:
            if _is_current(target, _identity(model, landed)):
                current += 1
                continue
            comments += score_file(model, source, landed, target)
        except FileNotFoundError:
            continue  # withdrawn into history meanwhile (an ingest of that month): nothing to score
        scored += 1
    return Scored(source, scored, current, comments)
