"""The ledger: appends under a lock from real processes, torn tails from a real SIGKILL,
and every kind of tampering named by `verify` at its place."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipelines.ledger import (
    Ledger,
    LedgerCorrupt,
    SigningKey,
    canonical_bytes,
    file_mode_problems,
    mismatches,
)
from pipelines.ledger.canonical import sha256_hex

REPO = Path(__file__).resolve().parents[1]


def run_child(code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, check=check, cwd=REPO
    )


def problems_at(problems, where: str) -> list[str]:
    return [p.what for p in problems if p.where == where and p.is_mismatch]


def lines_of(ledger: Ledger) -> list[bytes]:
    return ledger.entries_path.read_bytes().splitlines()


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return SigningKey.load_or_create(tmp_path / "keys" / "signing_ed25519.pem")


@pytest.fixture
def ledger(tmp_path: Path, key: SigningKey) -> Ledger:
    """30 entries, checkpoints after 10, 20 and 30."""
    book = Ledger(tmp_path / "ledger")
    for n in range(30):
        book.append(
            "archived_original", {"n": n, "name": f"满意度调查-{n}.xlsx", "sha256": sha256_hex(str(n).encode())}
        )
        if n % 10 == 9:
            book.checkpoint(key)
    return book


# ------------------------------------------------------------------ writing and reading


def test_round_trip_keeps_chinese_text_and_canonical_lines(tmp_path: Path):
    book = Ledger(tmp_path / "ledger")
    body = {"approved_by": "张三", "note": "第二次修订：更正 84.83", "files": [{"path": "r2/部门.html", "bytes": 1024}]}
    first = book.append("approval", body)
    second, third = book.append_many([("landing", {"rows": 7}), ("check", {"ok": True, "month": "2026-03"})])
    assert [e.index for e in (first, second, third)] == [0, 1, 2]
    assert first.prev == "" and second.prev == first.digest and third.prev == second.digest
    read = book.entries()
    assert [e.body for e in read] == [body, {"rows": 7}, {"ok": True, "month": "2026-03"}]
    assert read[0] == first and read[0].line == canonical_bytes(first.to_dict())
    raw = book.entries_path.read_bytes()
    assert "张三".encode() in raw and raw.endswith(b"\n") and raw.count(b"\n") == 3
    assert first.at.endswith("Z") and len(first.at) == len("2026-03-01T08:00:00Z")
    assert book.last("approval").body["approved_by"] == "张三"
    assert book.last("check", where=lambda b: b["month"] == "2026-03") == third
    assert book.last("check", where=lambda b: b["month"] == "2026-04") is None
    assert book.verify() == []


def test_untouched_ledger_verifies_clean_after_many_appends_and_checkpoints(tmp_path: Path, key: SigningKey):
    book = Ledger(tmp_path / "ledger")
    heads = []
    for n in range(150):
        book.append_many([("landing", {"n": n})] * (n % 3 + 1))
        if n % 7 == 0:
            heads.append(book.checkpoint(key).to_dict())
    heads.append(book.checkpoint(key).to_dict())
    assert book.verify() == []
    assert book.verify(pinned_heads=heads, pinned_keys=[key.public_key_hex], current_public_key=key) == []
    assert len(book.checkpoints()) == len(heads) and book.latest_checkpoint().tree_size == book.size()


def test_appends_from_four_processes_and_threads_are_serialised(tmp_path: Path):
    folder = tmp_path / "ledger"
    child = """
        import sys
        from pathlib import Path
        from pipelines.ledger import Ledger
        book = Ledger(Path(sys.argv[1]))
        for n in range(50):
            book.append("landing", {"writer": sys.argv[2], "n": n, "text": "并发写入" * 50})
    """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(child), str(folder), str(w)], cwd=REPO)
        for w in range(4)
    ]
    book = Ledger(folder)
    threads = [
        threading.Thread(target=lambda w=w: [book.append("check", {"thread": w, "n": n}) for n in range(10)])
        for w in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    entries = book.entries()
    assert len(entries) == 230 and [e.index for e in entries] == list(range(230))
    assert not book.entry_lines().tail
    per_writer = {w: [e.body["n"] for e in entries if e.body.get("writer") == str(w)] for w in range(4)}
    assert all(ns == list(range(50)) for ns in per_writer.values())
    assert book.verify() == []


# ------------------------------------------------------------------ torn tails


TEAR_CHILD = """
    import os, signal, sys
    from pathlib import Path
    from pipelines.ledger import Ledger, files

    def tear(fd, data):  # the write a kill cuts short: half the bytes, then SIGKILL
        os.write(fd, data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    book = Ledger(Path(sys.argv[1]))
    files.write_lines = tear
    book.append("landing", {"file": "第三季度.csv", "rows": 12345})
"""


def test_append_killed_by_sigkill_leaves_a_torn_tail_that_is_set_aside_and_recorded(ledger: Ledger, key):
    before = ledger.entries_path.read_bytes()
    child = run_child(TEAR_CHILD, str(ledger.folder), check=False)
    assert child.returncode == -signal.SIGKILL
    torn = ledger.entries_path.read_bytes()[len(before) :]
    assert torn and not torn.endswith(b"\n")
    problems = ledger.verify(current_public_key=key)
    assert mismatches(problems) == []
    assert [p.severity for p in problems] == ["note"] and f"{len(torn)} bytes" in problems[0].what
    assert problems[0].where == "ledger/entries.jsonl line 31"
    assert len(ledger.entries()) == 30  # a torn tail is not an entry

    after = ledger.append("landing", {"file": "第三季度.csv", "rows": 12345})
    set_aside = ledger.entries()[30]
    assert set_aside.kind == "torn_tail_set_aside" and after.index == 31 and after.prev == set_aside.digest
    assert set_aside.body == {
        "file": "entries.jsonl",
        "bytes": len(torn),
        "sha256": sha256_hex(torn),
        "kept_at": f"torn/{sha256_hex(torn)}.partial",
    }
    assert (ledger.folder / set_aside.body["kept_at"]).read_bytes() == torn
    assert ledger.entries_path.read_bytes().startswith(before)
    ledger.checkpoint(key)
    assert ledger.verify(current_public_key=key) == []


@pytest.mark.slow
def test_appends_of_large_entries_killed_at_random_moments_lose_nothing(tmp_path: Path, key):
    """A writer of 1 MB entries killed by SIGKILL wherever it is, five times over: each
    time the ledger holds whole entries (and at most a torn tail, which the next
    append sets aside), and verifies with no mismatch. A kill rarely lands inside the
    write itself; the test above tears one for certain."""
    book = Ledger(tmp_path / "ledger")
    child = """
        import sys
        from pathlib import Path
        from pipelines.ledger import Ledger
        book = Ledger(Path(sys.argv[1]))
        while True:
            book.append("landing", {"blob": "证" * 350_000})
    """
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(child), str(book.folder)], cwd=REPO)
        time.sleep(1.0 + 0.29 * attempt)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        tail = book.entry_lines().tail
        assert mismatches(book.verify()) == []
        count = book.size()
        book.append("check", {"attempt": attempt})
        entries = book.entries()
        if tail:
            assert entries[count].kind == "torn_tail_set_aside" and entries[count].body["bytes"] == len(tail)
        book.checkpoint(key)
        assert book.verify(current_public_key=key) == []


def test_hand_truncated_last_lines_are_torn_tails_in_both_files(ledger: Ledger, key):
    data = ledger.entries_path.read_bytes()
    ledger.entries_path.write_bytes(data[:-40])  # the last entry loses its end and its newline
    heads = ledger.checkpoints_path.read_bytes()
    ledger.checkpoints_path.write_bytes(heads[:-25])
    notes = ledger.verify()
    assert {p.where for p in notes if p.severity == "note"} == {
        "ledger/entries.jsonl line 30",
        "ledger/checkpoints.jsonl line 3",
    }
    head = ledger.checkpoint(key)
    kinds = [e.kind for e in ledger.entries()]
    assert kinds[29:] == ["torn_tail_set_aside", "torn_tail_set_aside"]
    assert {e.body["file"] for e in ledger.entries()[29:]} == {"entries.jsonl", "checkpoints.jsonl"}
    assert head.tree_size == 31 and len(ledger.checkpoints()) == 3
    assert mismatches(ledger.verify()) == []  # the torn entry 29 was never in a kept checkpoint


def test_a_complete_line_that_does_not_follow_is_refused_not_repaired(ledger: Ledger, key):
    lines = lines_of(ledger)
    entry = json.loads(lines[-1])
    lines[-1] = canonical_bytes(entry | {"prev": "0" * 64})
    write_lines(ledger.entries_path, lines)
    with pytest.raises(LedgerCorrupt, match="line 30: its prev is not the hash of line 29"):
        ledger.append("landing", {})
    lines[-1] = b'{"index": 29, "kind": "forged"}'
    write_lines(ledger.entries_path, lines)
    with ledger.entries_path.open("ab") as handle:
        handle.write(b'{"index":30,"ki')  # and a torn tail after it: left alone too
    snapshot = ledger.entries_path.read_bytes()
    with pytest.raises(LedgerCorrupt, match=r"entries.jsonl line 30: a complete line that is not a ledger entry"):
        ledger.append("landing", {})
    with pytest.raises(LedgerCorrupt, match="line 30"):
        ledger.checkpoint(key)
    assert ledger.entries_path.read_bytes() == snapshot  # nothing cut, nothing added
    assert not ledger.torn_dir.exists()


def test_a_body_with_no_canonical_form_is_refused_before_a_torn_tail_moves(ledger: Ledger):
    with ledger.entries_path.open("ab") as handle:
        handle.write(b'{"index":30,"ki')
    snapshot = ledger.entries_path.read_bytes()
    with pytest.raises(ValueError, match=r"\$.body.ratio: nan has no JSON form"):
        ledger.append_many([("landing", {"rows": 1}), ("check", {"ratio": float("nan")})])
    assert ledger.entries_path.read_bytes() == snapshot and not ledger.torn_dir.exists()
    assert [e.kind for e in ledger.append_many([("landing", {"rows": 1})] * 2)] == ["landing"] * 2
    assert [e.kind for e in ledger.entries()[30:]] == ["torn_tail_set_aside", "landing", "landing"]


def test_checkpoint_refuses_to_sign_a_rewritten_history(ledger: Ledger, key):
    lines = lines_of(ledger)
    rewritten = Ledger(ledger.folder.parent / "forged")
    for line in lines:  # the same events with one changed, re-chained from scratch
        entry = json.loads(line)
        body = entry["body"] if entry["body"]["n"] != 5 else {**entry["body"], "sha256": "0" * 64}
        rewritten.append(entry["kind"], body)
    ledger.entries_path.write_bytes(rewritten.entries_path.read_bytes())
    with pytest.raises(LedgerCorrupt, match="no longer have the root the latest checkpoint signed"):
        ledger.checkpoint(key)


# ------------------------------------------------------------------ tampering, named


def test_an_edited_entry_is_named(ledger: Ledger, key):
    lines = lines_of(ledger)
    entry = json.loads(lines[12])
    entry["body"]["name"] = "伪造.xlsx"
    lines[12] = canonical_bytes(entry)  # re-encoded canonically: only the chain and the roots show it
    write_lines(ledger.entries_path, lines)
    problems = ledger.verify(current_public_key=key)
    assert problems_at(problems, "ledger entry 12") and "edited" in problems_at(problems, "ledger entry 12")[0]
    assert problems_at(problems, "checkpoint 2") and problems_at(problems, "checkpoint 3")
    assert problems_at(problems, "checkpoint 1") == []

    lines[12] = lines[12].replace(b'"kind":', b'"kind": ')  # hand-edited, not canonical
    write_lines(ledger.entries_path, lines)
    assert any("not canonical" in what for what in problems_at(ledger.verify(), "ledger entry 12"))


def test_an_edited_last_entry_is_found_by_its_checkpoint(ledger: Ledger):
    lines = lines_of(ledger)
    lines[-1] = lines[-1].replace(b'"n":29', b'"n":28')
    write_lines(ledger.entries_path, lines)
    (what,) = problems_at(ledger.verify(), "checkpoint 3")
    assert "ledger entries 20-29 hold a change" in what


def test_a_deleted_entry_is_named(ledger: Ledger):
    lines = lines_of(ledger)
    del lines[17]
    write_lines(ledger.entries_path, lines)
    problems = ledger.verify()
    (what,) = problems_at(problems, "ledger entry 17")
    assert what.startswith("missing: deleted") and "line 18 holds entry 18" in what
    assert problems_at(problems, "checkpoint 2") and not problems_at(problems, "checkpoint 1")


def test_two_swapped_entries_are_named(ledger: Ledger):
    lines = lines_of(ledger)
    lines[4], lines[8] = lines[8], lines[4]
    write_lines(ledger.entries_path, lines)
    problems = ledger.verify()
    assert problems_at(problems, "ledger entry 4") == [
        "is on line 9, where entry 8 belongs: entries were moved or swapped"
    ]
    assert problems_at(problems, "ledger entry 8") == [
        "is on line 5, where entry 4 belongs: entries were moved or swapped"
    ]
    assert problems_at(problems, "checkpoint 1")  # the roots see the order too


def test_truncation_at_the_end_is_found_against_a_pinned_head(ledger: Ledger, key):
    published = ledger.latest_checkpoint().to_dict() | {"source": "published 2026-03 r2"}
    write_lines(ledger.entries_path, lines_of(ledger)[:25])
    write_lines(ledger.checkpoints_path, ledger.checkpoints_path.read_bytes().splitlines()[:2])  # covers its tracks
    assert mismatches(ledger.verify(current_public_key=key)) == []  # the ledger alone cannot tell
    problems = ledger.verify(pinned_heads=[published], current_public_key=key)
    assert problems_at(problems, "published 2026-03 r2") == [
        "ledger truncated: a published edition pins tree size 30, the ledger has 25 entries"
    ]


def test_edited_and_deleted_checkpoints_are_found(ledger: Ledger, key):
    pinned = [head.to_dict() for head in ledger.checkpoints()]
    lines = ledger.checkpoints_path.read_bytes().splitlines()
    head = json.loads(lines[1])
    head["tree_size"] = 11
    lines[1] = canonical_bytes(head)
    write_lines(ledger.checkpoints_path, lines)
    problems = ledger.verify()
    assert any("signature does not verify" in what for what in problems_at(problems, "checkpoint 2"))

    del lines[1]
    write_lines(ledger.checkpoints_path, lines)
    assert mismatches(ledger.verify()) == []
    problems = ledger.verify(pinned_heads=pinned)
    assert problems_at(problems, "pinned tree head 2") == [
        "no checkpoint in checkpoints.jsonl has this head (size 20): checkpoints were deleted or edited"
    ]


def test_a_replaced_signing_key_is_found(ledger: Ledger, key, tmp_path: Path):
    key_file = tmp_path / "keys" / "signing_ed25519.pem"
    pinned = [ledger.latest_checkpoint().to_dict()]
    key_file.unlink()
    new_key = SigningKey.load_or_create(key_file)
    assert new_key.public_key_hex != key.public_key_hex
    ledger.append("landing", {"n": 30})
    ledger.checkpoint(new_key)
    problems = ledger.verify(pinned_heads=pinned, pinned_keys=[key.public_key_hex], current_public_key=new_key)
    assert all("the signing key was replaced" in problems_at(problems, f"checkpoint {n}")[0] for n in (1, 2, 3))
    assert problems_at(problems, "checkpoint 4") == [
        f"signed by key {new_key.key_id[:16]}, which no published edition or run pins"
    ]
    assert "the signing key was replaced" in problems_at(problems, "signing key")[0]
    assert "the signing key was replaced" in problems_at(problems, "pinned tree head 1")[0]


def test_a_history_rewritten_and_resigned_with_another_key_is_found(ledger: Ledger, key, tmp_path: Path):
    pinned = [head.to_dict() for head in ledger.checkpoints()]
    forger_key = SigningKey.generate()
    forged = Ledger(tmp_path / "forged")
    for entry in ledger.entries():
        body = entry.body if entry.body["n"] != 3 else {**entry.body, "name": "伪造签发人"}
        forged.append(entry.kind, body)
        if entry.index % 10 == 9:
            forged.checkpoint(forger_key)
    assert forged.verify(current_public_key=forger_key) == []  # a rewrite vouches for itself ...
    problems = forged.verify(pinned_heads=pinned, pinned_keys=[key.public_key_hex], current_public_key=forger_key)
    for n in (1, 2, 3):  # ... but not against the heads and key the editions printed
        assert "do not have the root it pins" in problems_at(problems, f"pinned tree head {n}")[0]
    assert problems_at(problems, "signing key")


# ------------------------------------------------------------------ the key


def test_four_racing_processes_make_one_key_with_mode_0600(tmp_path: Path):
    path = tmp_path / "home" / "keys" / "signing_ed25519.pem"
    start = time.time() + 2.0
    child = """
        import sys, time
        from pathlib import Path
        from pipelines.ledger import SigningKey
        start = float(sys.argv[2])
        while time.time() < start:
            pass
        print(SigningKey.load_or_create(Path(sys.argv[1])).public_key_hex)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(child), str(path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(4)
    ]
    printed = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert printed == {SigningKey.load(path).public_key_hex}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file left behind
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert file_mode_problems(path) == []
    path.chmod(0o644)
    assert file_mode_problems(path) == [f"{path}: mode 0644, must be 0600 (read and write by its owner only)"]


def test_signing_key_location_honours_GOVPERF_SIGNING_KEY(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipelines.settings import settings

    monkeypatch.setenv("GOVPERF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GOVPERF_SIGNING_KEY", raising=False)
    assert settings().signing_key_file == tmp_path / "home" / "keys" / "signing_ed25519.pem"
    assert settings().ledger_dir == tmp_path / "home" / "ledger"
    monkeypatch.setenv("GOVPERF_SIGNING_KEY", str(tmp_path / "vault" / "govperf.pem"))
    assert settings().signing_key_file == tmp_path / "vault" / "govperf.pem"
    key = SigningKey.load_or_create(settings().signing_key_file)
    assert (tmp_path / "vault" / "govperf.pem").exists() and not (tmp_path / "home" / "keys").exists()
    assert key.key_id == sha256_hex(bytes.fromhex(key.public_key_hex)) and len(key.public_key_hex) == 64
