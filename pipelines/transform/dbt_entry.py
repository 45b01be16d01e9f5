"""`govperf-dbt`: dbt's own command line, run the way a one-shot process should be.

dbt holds its manifest (tens of thousands of objects) for the whole build, and
Python's collector walks them again on its frequent passes and at exit: about
0.7 s of a one-month build's 8.6 s, and more in the exit's last collections. The
first generation is collected less often (its garbage stays bounded: each pass
still frees it), and what is live at exit is frozen so the last passes skip it.
Everything else is dbt's: the same arguments, output and exit status.
"""

from __future__ import annotations

import atexit
import gc
import sys

FIRST_GENERATION_THRESHOLD = 10_000  # Python's default is 700


def main() -> None:
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, 20, 20)
    atexit.register(gc.freeze)
    from dbt.cli.main import cli

    sys.exit(cli())


if __name__ == "__main__":
    main()
