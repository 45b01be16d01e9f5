"""A signed tree head: the ledger's size and Merkle root at one moment, signed.

The signed bytes are the domain string `govperf-tree-head-v1` and a newline, then
the RFC 8785 canonical JSON of exactly four fields:

    b"govperf-tree-head-v1\\n" + JCS({"tree_size": n, "root_hash": hex,
                                      "timestamp": "YYYY-MM-DDTHH:MM:SSZ", "public_key": hex})

The domain string keeps a tree-head signature from being read as a signature of
anything else made with the same key; the public key is inside the signed bytes, so
a head cannot be moved under another key's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.ledger.canonical import canonical_bytes
from pipelines.ledger.keys import SigningKey, public_key_id, verify_signature

TREE_HEAD_DOMAIN = b"govperf-tree-head-v1\n"
_FIELDS = ("tree_size", "root_hash", "timestamp", "public_key", "key_id", "signature")


def tree_head_bytes(tree_size: int, root_hash: str, timestamp: str, public_key: str) -> bytes:
    body = {"tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp, "public_key": public_key}
    return TREE_HEAD_DOMAIN + canonical_bytes(body)


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root_hash: str  # hex
    timestamp: str  # ISO-8601 UTC, seconds
    public_key: str  # raw Ed25519 public key, hex
    key_id: str  # SHA-256 hex of the raw public key
    signature: str  # hex

    @classmethod
    def sign(cls, key: SigningKey, tree_size: int, root_hash: str, timestamp: str) -> SignedTreeHead:
        signature = key.sign(tree_head_bytes(tree_size, root_hash, timestamp, key.public_key_hex))
        return cls(tree_size, root_hash, timestamp, key.public_key_hex, key.key_id, signature.hex())

    def signed_bytes(self) -> bytes:
        return tree_head_bytes(self.tree_size, self.root_hash, self.timestamp, self.public_key)

    def verify(self) -> bool:
        """The signature holds under the key the head names, and key_id is that key's."""
        try:
            key_matches = public_key_id(self.public_key) == self.key_id
        except ValueError:
            return False
        return key_matches and verify_signature(self.public_key, self.signed_bytes(), self.signature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedTreeHead:
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise ValueError(f"a signed tree head needs {', '.join(missing)}")
        if not isinstance(data["tree_size"], int) or isinstance(data["tree_size"], bool):
            raise ValueError(f"tree_size {data['tree_size']!r} is not a whole number")
        for name in _FIELDS[1:]:
            if not isinstance(data[name], str):
                raise ValueError(f"{name} {data[name]!r} is not text")
        return cls(**{name: data[name] for name in _FIELDS})
