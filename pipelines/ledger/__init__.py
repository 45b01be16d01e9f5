"""The tamper-evident record: an append-only, hash-linked Merkle-tree log of the
events that make or move evidence, with Ed25519-signed tree heads (store.py says how
it is kept on disk, verify.py what is checked)."""

from pipelines.ledger.canonical import CanonicalError, canonical_bytes, sha256_hex
from pipelines.ledger.checkpoint import TREE_HEAD_DOMAIN, SignedTreeHead
from pipelines.ledger.files import LedgerCorrupt
from pipelines.ledger.keys import SigningKey, SigningKeyError, file_mode_problems, verify_signature
from pipelines.ledger.proof import build_proof, verify_proof, write_proof
from pipelines.ledger.store import TORN_TAIL_KIND, Ledger, LedgerEntry
from pipelines.ledger.verify import LedgerProblem, mismatches

__all__ = [
    "TORN_TAIL_KIND",
    "TREE_HEAD_DOMAIN",
    "CanonicalError",
    "Ledger",
    "LedgerCorrupt",
    "LedgerEntry",
    "LedgerProblem",
    "SignedTreeHead",
    "SigningKey",
    "SigningKeyError",
    "build_proof",
    "canonical_bytes",
    "file_mode_problems",
    "mismatches",
    "sha256_hex",
    "verify_proof",
    "verify_signature",
    "write_proof",
]
