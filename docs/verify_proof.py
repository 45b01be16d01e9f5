#!/usr/bin/env python3
"""Check a govperf inclusion proof offline, with Python's hashlib and `cryptography` only.

    python verify_proof.py PROOF.json [EXPECTED_PUBLIC_KEY_HEX]

Prints OK and exits 0 when the entry is in the signed tree; else prints each problem
and exits 1. Give the public key printed in the published edition's footer to check
who signed, too. Needs nothing from govperf: copy this file anywhere.
"""

import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify_proof(proof, public_key=None):
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
    # the leaf hash, folded with the audit path as RFC 9162 section 2.1.3.2 says
    fn, sn, r = index, size - 1, hashlib.sha256(b"\x00" + entry).digest()
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


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            proof = json.load(handle)
    except (OSError, ValueError) as error:
        print(f"{argv[1]}: cannot read the proof: {error}")
        return 1
    problems = verify_proof(proof, argv[2] if len(argv) == 3 else None)
    for problem in problems:
        print(f"{argv[1]}: {problem}")
    if not problems:
        entry = json.loads(proof["entry"])
        head = proof["tree_head"]
        print(
            f"OK: entry {entry['index']} ({entry['kind']}, {entry['at']}) is in the tree of {head['tree_size']} "
            f"entries signed at {head['timestamp']} by key {head['key_id'][:16]}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
