"""Peak memory of landing each hostile file, one fresh process per file.

    .venv/bin/python benchmarks/hostile_files.py                 # the figures of issue 11
    .venv/bin/python benchmarks/hostile_files.py --line-mb 100 --bomb-rows 500000

Builds each file in a scratch folder (a CSV with one very long line, in UTF-8
and in GBK; a field one byte over the 8 MiB limit beside a comment of a million
characters; an XLSX decompression bomb; NUL bytes), lands it with `land_file` in
a child process,
and prints the file's size, the child's peak RSS (ru_maxrss from os.wait4) and
what became of its rows. To measure another checkout's code, run this script
with PYTHONPATH pointing at that checkout (it needs pipelines/sample/hostile.py).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--line-mb", type=int, default=500, help="length of the long CSV line, MiB")
    parser.add_argument("--bomb-rows", type=int, default=1_800_000, help="rows in the XLSX bomb's sheet")
    parser.add_argument("--only", nargs="*", help="names of the files to run (default: all)")
    args = parser.parse_args()

    from pipelines.sample import hostile

    scratch = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    name = "好差评明细_202503"
    files = {
        "long_line_csv": lambda d: hostile.long_line_csv(d / f"{name}.csv", args.line_mb * MIB),
        "long_line_gbk_csv": lambda d: hostile.long_line_csv(d / f"{name}.csv", args.line_mb * MIB, "gbk"),
        "many_fields_line_csv": lambda d: hostile.many_fields_line_csv(d / f"{name}.csv", args.line_mb * MIB),
        "field_over_limit_csv": lambda d: hostile.field_limit_csv(d / f"{name}.csv", 8 * MIB),
        "xlsx_bomb": lambda d: hostile.xlsx_bomb(d / f"{name}.xlsx", args.bomb_rows),
        "nul_bytes_csv": lambda d: hostile.nul_csv(d / f"{name}.csv"),
    }
    print(f"{'file':<22} {'size MB':>8} {'peak RSS MB':>11} {'seconds':>7}  rows read/accepted/quarantined, error")
    try:
        for label, build in files.items():
            if args.only and label not in args.only:
                continue
            folder = scratch / label
            path = build(folder / "inbox" / hostile.SOURCE)
            started = time.monotonic()
            try:
                landing, peak = hostile.land_in_child(path, folder)
                outcome = (
                    f"{landing['rows_read']}/{landing['rows_accepted']}/{landing['rows_quarantined']}"
                    f"{', ' + landing['file_error'][:90] if landing['file_error'] else ''}"
                )
            except RuntimeError as exc:
                peak, outcome = 0, f"child failed: {str(exc).splitlines()[-1][:100]}"
            seconds = time.monotonic() - started
            print(
                f"{label:<22} {path.stat().st_size / 1e6:>8.1f} {peak / 1e6:>11.0f} {seconds:>7.1f}  {outcome}",
                flush=True,
            )
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
