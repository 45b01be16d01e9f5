"""Time rendering the bulletins of a warehouse that a run has already built.

    .venv/bin/python benchmarks/bulletin_render.py --home var 2025-06 2025-Q2

For each edition: collecting it from the marts (queries), drawing its charts with
an empty chart cache (cold) and again from the cache (warm), and writing the
edition with its department pages. Prints seconds per phase, the number of
department pages and charts, and peak memory. Then, per kind of chart, the
milliseconds vl-convert takes to draw one, and to draw it without its axis labels:
measuring label text is most of a chart's cost. The output goes to a temporary
folder; the home's cache is not touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("var"), help="a GOVPERF_HOME with a built warehouse")
    parser.add_argument("editions", nargs="+", help="periods: YYYY-MM or YYYY-Qn")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bulletin-bench-"))
    os.environ["GOVPERF_HOME"] = str(args.home.resolve())
    os.environ["GOVPERF_CACHE"] = str(scratch / "cache")

    import duckdb

    from pipelines.publish.bulletin import collect_edition, write_edition
    from pipelines.publish.config import Edition
    from pipelines.settings import settings

    con = duckdb.connect(str(settings().duckdb_path), read_only=True)
    print(f"{'edition':<10} {'pages':>5} {'charts':>6} {'collect s':>9} {'cold s':>7} {'warm s':>7}")
    for key in args.editions:
        edition = Edition.parse(key)
        started = time.perf_counter()
        collected = collect_edition(con, edition)
        collect = time.perf_counter() - started
        timings = []
        for run in ("cold", "warm"):
            started = time.perf_counter()
            write_edition(collected, scratch / run)
            timings.append(time.perf_counter() - started)
        pages = len(collected["pages"])
        drawn = sum(page["trend_chart"] is not None for page in collected["pages"]) + 2 + len(collected["peer_groups"])
        print(f"{key:<10} {pages:>5} {drawn:>6} {collect:>9.2f} {timings[0]:>7.2f} {timings[1]:>7.2f}")
    con.close()
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    label_costs(collected)


def label_costs(collected: dict) -> None:
    """Per kind of chart of the last edition: ms to draw one whole, without axis labels,
    and as govperf draws it (its shape compiled once; a trend chart's axes drawn once)."""
    import copy

    import vl_convert

    from pipelines.publish import charts

    kinds = {
        "rank bands (all)": collected["band_chart"]["spec"] if collected["band_chart"] else None,
        "rank bands (a peer group)": next((g["chart"]["spec"] for g in collected["peer_groups"] if g["chart"]), None),
        "trend (a department)": next((p["trend_chart"] for p in collected["pages"] if p["trend_chart"]), None),
        "complaint themes": collected["themes_chart"],
    }
    print(f"\n{'chart':<28} {'texts':>6} {'ms':>7} {'no labels ms':>13} {'govperf ms':>11}")
    for kind, spec in kinds.items():
        if spec is None:
            continue
        vega = vl_convert.vegalite_to_vega(spec)
        bare = copy.deepcopy(vega)
        for axis in bare.get("axes", []):
            axis["labels"] = False
        labels = vl_convert.vega_to_svg(vega).count("<text")  # every piece of text drawn
        print(
            f"{kind:<28} {labels:>6} {_ms(vl_convert.vega_to_svg, vega):>7.1f} {_ms(vl_convert.vega_to_svg, bare):>13.1f}"
            f" {_ms(charts._draw, spec):>11.1f}"
        )


def _ms(draw, spec, repeat: int = 5) -> float:
    draw(spec)
    started = time.perf_counter()
    for _ in range(repeat):
        draw(spec)
    return (time.perf_counter() - started) / repeat * 1000


if __name__ == "__main__":
    main()
