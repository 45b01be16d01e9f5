"""Time the ledger on a long history.

    .venv/bin/python benchmarks/ledger.py [--entries 20000] [--checkpoints 200]

Builds a ledger of that many entries (bodies shaped like a landing: a file name in
Chinese, counts and three Parquet hashes) in a temporary folder, with a signed
checkpoint every entries/checkpoints appends, then prints seconds for: one append,
one checkpoint, verify() (with every checkpoint pinned), and one inclusion proof.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from pipelines.ledger import Ledger, SigningKey, build_proof


def body(n: int) -> dict:
    return {
        "file": f"12345热线-第{n}批.xlsx",
        "rows_read": 1000 + n,
        "rows_accepted": 990 + n,
        "rows_quarantined": 10,
        "parquet": [hashlib.sha256(f"{n}-{i}".encode()).hexdigest() for i in range(3)],
    }


def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"{label:<46}{time.perf_counter() - start:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--checkpoints", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    ledger, key = Ledger(folder / "ledger"), SigningKey.load_or_create(folder / "keys" / "signing.pem")
    batch = max(1, args.entries // args.checkpoints)
    start = time.perf_counter()
    for first in range(0, args.entries, batch):  # one append_many and one checkpoint per simulated run
        ledger.append_many([("landing", body(n)) for n in range(first, min(first + batch, args.entries))])
        ledger.checkpoint(key)
    built = time.perf_counter() - start
    size = ledger.entries_path.stat().st_size
    print(
        f"{args.entries} entries ({size / 1e6:.1f} MB), {len(ledger.checkpoints())} checkpoints, built in {built:.1f} s"
    )
    timed("append (one entry)", lambda: ledger.append("check", {"ok": True}))
    head = timed("checkpoint", lambda: ledger.checkpoint(key))
    pinned = [h.to_dict() for h in ledger.checkpoints()]
    problems = timed("verify (every checkpoint pinned)", lambda: ledger.verify(pinned, [key.public_key_hex], key))
    timed("build_proof (one entry)", lambda: build_proof(ledger, args.entries // 2, head))
    print(f"problems found: {len(problems)}")


if __name__ == "__main__":
    main()
