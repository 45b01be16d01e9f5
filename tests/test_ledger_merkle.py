"""The RFC 9162 Merkle tree and the canonical JSON under the ledger, against naive
reference computations."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ledger import merkle
from pipelines.ledger.canonical import CanonicalError, canonical_bytes


def naive_mth(entries: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 as written: split at the largest power of two below n."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(entries[:k]) + naive_mth(entries[k:])).digest()


def entries_of(size: int, salt: int = 0) -> list[bytes]:
    return [f"entry {salt}-{i}".encode() for i in range(size)]


def test_rfc6962_reference_vectors():
    """The eight leaves of the Certificate Transparency reference tests, and their roots."""
    leaves = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]]
    leaves.append(bytes.fromhex("606162636465666768696a6b6c6d6e6f"))
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root(hashes[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root(hashes).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 70), salt=st.integers(0, 1000))
def test_root_and_prefix_roots_equal_the_recursive_definition(size, salt):
    entries = entries_of(size, salt)
    hashes = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root(hashes) == naive_mth(entries)
    prefixes = merkle.prefix_roots(hashes, set(range(size + 1)))
    assert all(prefixes[n] == naive_mth(entries[:n]) for n in range(size + 1))


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_inclusion_proofs_verify_and_wrong_ones_do_not(data):
    size = data.draw(st.integers(1, 70))
    index = data.draw(st.integers(0, size - 1))
    entries = entries_of(size)
    hashes = [merkle.leaf_hash(e) for e in entries]
    root = naive_mth(entries)
    proof = merkle.inclusion_proof(hashes, index, size)
    assert len(proof) <= math.ceil(math.log2(size)) if size > 1 else proof == []
    assert merkle.verify_inclusion(hashes[index], index, size, proof, root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), index, size, proof, root)
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(hashes[index], other, size, proof, root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bent = list(proof)
        bent[position] = hashlib.sha256(bent[position]).digest()
        assert not merkle.verify_inclusion(hashes[index], index, size, bent, root)
        assert not merkle.verify_inclusion(hashes[index], index, size, proof[:-1], root)
    assert not merkle.verify_inclusion(hashes[index], index, size, proof + [root], root)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_consistency_proofs_verify_and_a_rewritten_start_does_not(data):
    new_size = data.draw(st.integers(1, 70))
    old_size = data.draw(st.integers(1, new_size))
    entries = entries_of(new_size)
    hashes = [merkle.leaf_hash(e) for e in entries]
    old_root, new_root = naive_mth(entries[:old_size]), naive_mth(entries)
    proof = merkle.consistency_proof(hashes, old_size, new_size)
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    rewritten = list(entries)
    rewritten[data.draw(st.integers(0, old_size - 1))] = b"rewritten"
    assert not merkle.verify_consistency(old_size, new_size, naive_mth(rewritten[:old_size]), new_root, proof)
    if old_size < new_size:
        assert not merkle.verify_consistency(old_size, new_size, old_root, naive_mth(rewritten), proof)
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])


def test_canonical_json_rules():
    assert canonical_bytes({"b": 1, "a": "中文", "c": [1.0, 0.5]}) == '{"a":"中文","b":1,"c":[1,0.5]}'.encode()
    assert canonical_bytes({"t": (1, 2)}) == b'{"t":[1,2]}'
    assert canonical_bytes({"d": date(2026, 3, 1)}) == b'{"d":"2026-03-01"}'
    assert canonical_bytes(datetime(2026, 3, 1, 8, tzinfo=UTC)) == b'"2026-03-01T08:00:00+00:00"'
    assert canonical_bytes(PurePosixPath("archive/ab.csv")) == b'"archive/ab.csv"'
    assert canonical_bytes(Decimal("84.5")) == b"84.5"  # a double holds it exactly: a number
    assert canonical_bytes(Decimal("84.83")) == b'"84.83"'  # it does not: kept as text, digit for digit
    for bad in (float("nan"), b"bytes", {1: "x"}, {"s": {1, 2}}, 2**60):
        with pytest.raises(CanonicalError):
            canonical_bytes(bad)
