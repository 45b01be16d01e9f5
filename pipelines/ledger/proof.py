"""A standalone inclusion proof: one ledger entry, its audit path, one signed head.

Whoever holds the proof file can check, offline and without the ledger, that the
entry is leaf `leaf_index` of the tree the head describes, and that the head was
signed by the key it names. `verify_proof` uses only json, hashlib and
`cryptography`, so it can be copied as it is into a script (docs/verify_proof.py is
that script). Compare the head's public key with one printed elsewhere (a published
edition's footer): the proof shows who signed, not whom to trust.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.ledger import merkle
from pipelines.ledger.checkpoint import SignedTreeHead

if TYPE_CHECKING:
    from pipelines.ledger.store import Ledger

PROOF_FORMAT = "govperf-inclusion-proof-v1"
HOW_TO_VERIFY = (
    "leaf = SHA-256(0x00 || UTF-8 bytes of 'entry'); fold 'audit_path' into it by RFC 9162 section 2.1.3.2 "
    "(node = SHA-256(0x01 || left || right)); the result must equal tree_head.root_hash. Then check the Ed25519 "
    "signature of b'govperf-tree-head-v1\\n' + the RFC 8785 JSON of tree_head's tree_size, root_hash, timestamp "
    "and public_key, under tree_head.public_key. Script: python docs/verify_proof.py FILE"
)


def build_proof(ledger: Ledger, index: int, head: SignedTreeHead) -> dict[str, Any]:
    lines = ledger.entry_lines().lines
    if not 0 <= index < head.tree_size <= len(lines):
        raise ValueError(f"entry {index} is not in the tree of {head.tree_size} entries (the ledger has {len(lines)})")
    leaves = [merkle.leaf_hash(line) for line in lines]
    if merkle.root(leaves[: head.tree_size]).hex() != head.root_hash:
        raise ValueError(f"the ledger's first {head.tree_size} entries no longer have the head's root")
    return {
        "format": PROOF_FORMAT,
        "entry": lines[index].decode("utf-8"),
        "leaf_index": index,
        "tree_size": head.tree_size,
        "audit_path": [node.hex() for node in merkle.inclusion_proof(leaves, index, head.tree_size)],
        "tree_head": head.to_dict(),
        "how_to_verify": HOW_TO_VERIFY,
    }


def write_proof(path: Path, proof: dict[str, Any]) -> None:
    """Written whole under a temporary name, then renamed: a reader never sees half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(proof, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def verify_proof(proof: dict, public_key: str | None = None) -> list[str]:
    """What is wrong with the proof; empty when it holds. Only json, hashlib, cryptography."""
    import hashlib
    import json

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        head, index, size = proof["tree_head"], proof["leaf_index"], proof["tree_size"]
        entry, path = proof["entry"].encode("utf-8"), [bytes.fromhex(node) for node in proof["audit_path"]]
        signed = {name: head[name] for name in ("tree_size", "root_hash", "timestamp", "public_key")}
        key, signature, root = bytes.fromhex(head["public_key"]), bytes.fromhex(head["signature"]), head["root_hash"]
        entry_index = json.loads(entry).get("index")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return [f"not a govperf inclusion proof: {error!r}"]
    problems = []
    if proof.get("format") != "govperf-inclusion-proof-v1":
        problems.append(f"unknown format {proof.get('format')!r}")
    if size != head["tree_size"] or entry_index != index:
        problems.append("leaf_index or tree_size disagree with the entry or the tree head")
    fn, sn, r = index, size - 1, hashlib.sha256(b"\x00" + entry).digest()  # RFC 9162 2.1.3.2
    ok = 0 <= index < size
    for p in path:
        ok = ok and sn > 0
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if not (ok and sn == 0 and r.hex() == root):
        problems.append("the entry and audit path do not lead to the tree head's root_hash")
    # RFC 8785 of these four fields (ASCII text, a whole number) is sorted, compact JSON
    message = b"govperf-tree-head-v1\n" + json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        problems.append("the tree head's signature does not verify under its public key")
    if head.get("key_id") != hashlib.sha256(key).hexdigest():
        problems.append("the tree head's key_id is not the SHA-256 of its public key")
    if public_key is not None and head["public_key"] != public_key:
        problems.append(f"signed by key {head['public_key']}, not by the expected {public_key}")
    return problems
