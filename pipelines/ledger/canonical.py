"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and SHA-256.

The same value always gives the same bytes, whatever the engine that made it, so a
hash of those bytes can be recomputed by anyone. The encoding is Trail of Bits'
`rfc8785` package; this module only turns the Python values the pipeline holds into
plain JSON values first, by these rules:

- `datetime` and `date` become their ISO-8601 text (`datetime.isoformat()`, so an
  aware time keeps its offset; the ledger itself writes UTC times as text already);
- `Path` becomes its POSIX text (`a/b.csv`), the same on every system;
- tuples become lists (JSON has only arrays);
- `Decimal` becomes a JSON number only when a double holds it exactly
  (`Decimal("84.5")`), else its text (`"84.83"`), so no digit is ever changed by a
  rounding nobody asked for;
- anything else that JSON cannot hold (bytes, sets, NaN, integers past 2**53, keys
  that are not text) is refused with an error naming the value's place.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import rfc8785


class CanonicalError(ValueError):
    """A value that canonical JSON cannot hold, with its place in the document."""


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CanonicalError(f"{where}: {value!r} has no JSON form")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{where}: the key {key!r} is not text")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, datetime | date):  # datetime is a date: one branch serves both
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Decimal):
        if value.is_finite() and Decimal(float(value)) == value:
            return float(value)
        return str(value)
    raise CanonicalError(f"{where}: a {type(value).__name__} has no canonical JSON form")


def plain(obj: Any) -> Any:
    """The JSON value `canonical_bytes` encodes: `obj` with the rules above applied."""
    return _plain(obj, "$")


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 bytes of `obj` (UTF-8, no whitespace, keys sorted by UTF-16 units)."""
    value = plain(obj)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError) as error:
        raise CanonicalError(f"$: {error}") from error


def is_canonical(line: bytes) -> bool:
    """Whether `line` is exactly the canonical JSON of the value it holds."""
    try:
        return canonical_bytes(json.loads(line)) == line
    except (UnicodeDecodeError, ValueError):  # not JSON, or a value with no canonical form
        return False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
