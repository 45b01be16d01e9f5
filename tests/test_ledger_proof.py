"""A revision's inclusion proof, checked as an auditor would: by docs/verify_proof.py,
in its own process, with only hashlib and cryptography."""

from __future__ import annotations

import ast
import copy
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.ledger import Ledger, SigningKey, build_proof, verify_proof, write_proof

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "verify_proof.py"


def check_with_script(path: Path, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated, so the script cannot import govperf even by accident; cwd outside the repo
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *args], capture_output=True, text=True, cwd=path.parent
    )


@pytest.fixture
def signed_proof(tmp_path: Path) -> tuple[dict, SigningKey]:
    key = SigningKey.load_or_create(tmp_path / "keys" / "signing_ed25519.pem")
    book = Ledger(tmp_path / "ledger")
    for n in range(40):
        book.append("landing", {"n": n})
    approval = book.append("revision_published", {"edition": "2026-03", "revision": 2, "approved_by": "李四"})
    book.append_many([("check", {"n": n}) for n in range(5)])
    head = book.checkpoint(key)
    return build_proof(book, approval.index, head), key


def test_the_standalone_script_accepts_a_real_proof(signed_proof, tmp_path: Path):
    proof, key = signed_proof
    path = tmp_path / "2026-03-r2.proof.json"
    write_proof(path, proof)
    assert verify_proof(json.loads(path.read_text(encoding="utf-8"))) == []
    done = check_with_script(path, key.public_key_hex)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: entry 40 (revision_published")
    assert "李四" in path.read_text(encoding="utf-8")  # the entry as text, readable


def _edit_entry(proof):
    proof["entry"] = proof["entry"].replace("李四", "伪造签发人")


def _edit_path(proof):
    proof["audit_path"][2] = "00" * 32


def _edit_signature(proof):
    signature = proof["tree_head"]["signature"]
    proof["tree_head"]["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]


def _edit_root(proof):
    proof["tree_head"]["root_hash"] = "ab" * 32


def _edit_index(proof):
    proof["leaf_index"] += 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_edit_entry, "do not lead to the tree head's root_hash"),
        (_edit_path, "do not lead to the tree head's root_hash"),
        (_edit_signature, "signature does not verify"),
        (_edit_root, "signature does not verify"),
        (_edit_index, "leaf_index or tree_size disagree"),
    ],
)
def test_the_standalone_script_refuses_a_tampered_proof(signed_proof, tmp_path: Path, tamper, message):
    proof, _key = signed_proof
    forged = copy.deepcopy(proof)
    tamper(forged)
    path = tmp_path / "forged.proof.json"
    write_proof(path, forged)
    done = check_with_script(path)
    assert done.returncode == 1, done.stdout
    assert message in done.stdout and "OK" not in done.stdout
    assert any(message in problem for problem in verify_proof(forged))


def test_a_proof_signed_by_another_key_is_refused_when_the_key_is_given(signed_proof, tmp_path: Path):
    proof, _key = signed_proof
    path = tmp_path / "other.proof.json"
    write_proof(path, proof)
    done = check_with_script(path, SigningKey.generate().public_key_hex)
    assert done.returncode == 1 and "not by the expected" in done.stdout


def test_the_checkers_import_only_the_standard_library_and_cryptography():
    from pipelines.ledger import proof as proof_module

    allowed = {"hashlib", "json", "sys", "cryptography"}
    for source in (SCRIPT.read_text(), inspect.getsource(proof_module.verify_proof)):
        tree = ast.parse(source if source.startswith("#!") else textwrap.dedent(source))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert {name.split(".")[0] for name in names} <= allowed


def test_a_signed_tree_head_round_trips_and_any_edit_breaks_it():
    from pipelines.ledger import SignedTreeHead

    key = SigningKey.generate()
    head = SignedTreeHead.sign(key, 7, "ab" * 32, "2026-03-31T09:00:00Z")
    assert SignedTreeHead.from_dict(json.loads(json.dumps(head.to_dict()))) == head and head.verify()
    assert head.signed_bytes().startswith(b"govperf-tree-head-v1\n{")
    for field, value in [("tree_size", 8), ("root_hash", "cd" * 32), ("timestamp", "2026-04-01T00:00:00Z")]:
        assert not SignedTreeHead.from_dict(head.to_dict() | {field: value}).verify()
    other = SigningKey.generate()
    assert not SignedTreeHead.from_dict(head.to_dict() | {"public_key": other.public_key_hex}).verify()
    assert not SignedTreeHead.from_dict(head.to_dict() | {"key_id": other.key_id}).verify()
    with pytest.raises(ValueError, match="needs signature"):
        SignedTreeHead.from_dict({k: v for k, v in head.to_dict().items() if k != "signature"})
