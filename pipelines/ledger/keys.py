"""The Ed25519 key that signs the ledger's tree heads.

Made once, on first use, as an unencrypted PKCS#8 PEM file readable by its owner only
(0600, in a folder 0700). The file is written in full under a temporary name beside
it and then hard-linked to its name: a link never replaces a file, so when two
processes make a key at once the first link wins and both go on with that key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SigningKeyError(RuntimeError):
    pass


def public_key_id(public_key_hex: str) -> str:
    """SHA-256 hex of the raw 32-byte public key: names a key without repeating it."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    path: Path | None = None

    @classmethod
    def generate(cls) -> SigningKey:
        """A key held in memory only (tests, and the one `load_or_create` writes)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise SigningKeyError(f"{path}: not an unencrypted PEM private key ({error})") from error
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: the key is a {type(key).__name__}, not an Ed25519 key")
        return cls(key, path)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            pem = cls.generate().private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")  # mkstemp: mode 0600
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                    os.link(temporary, path)
            finally:
                os.unlink(temporary)
        return cls.load(path)

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_key_hex(self) -> str:
        return self.public_key_raw.hex()

    @property
    def key_id(self) -> str:
        return public_key_id(self.public_key_hex)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def verify_signature(public_key_hex: str, data: bytes, signature_hex: str) -> bool:
    """True when `signature_hex` is the Ed25519 signature of `data` by that key;
    False for a wrong signature and for malformed hex or key bytes alike."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def file_mode_problems(path: Path) -> list[str]:
    """What is wrong with the key file's permissions, read from its mode bits (root
    ignores them when opening files, so they are checked by reading, not by trying)."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return [f"{path}: the key file is missing"]
    problems = []
    if mode != 0o600:
        problems.append(f"{path}: mode {mode:04o}, must be 0600 (read and write by its owner only)")
    folder_mode = stat.S_IMODE(path.parent.stat().st_mode)
    if folder_mode & 0o022:
        problems.append(
            f"{path.parent}: mode {folder_mode:04o} lets others replace the key (no write for group or others)"
        )
    return problems
