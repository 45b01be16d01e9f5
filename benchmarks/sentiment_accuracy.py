"""Accuracy and speed of the comment sentiment model (pipelines/analytics/sentiment.py).

    .venv/bin/python benchmarks/sentiment_accuracy.py
    .venv/bin/python benchmarks/sentiment_accuracy.py --labelled other_domain.csv

Trains with the shipped settings (pipelines/analytics/train_sentiment.py) and prints:
- in-domain accuracy: a held-out 20 % of every (domain, label) cell, seed 0, the model
  trained on the other 80 %;
- cross-domain accuracy: for each domain (the 9 shopping categories and food
  delivery), the model trained on all the others and tested on it: what to expect
  on comments of a domain the training data does not cover;
- with --labelled FILE (CSV with columns label, review; 1 positive, 0 negative): the
  shipped model's accuracy on it (a domain it was not trained on);
- the shipped model's speed: comments scored per second, and its size.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.analytics.sentiment import MODEL_PATH, SentimentModel, normalise, shipped_model
from pipelines.analytics.train_sentiment import DEFAULT_DATA, SETTINGS, Example, fit, read_labelled


def accuracy(model: SentimentModel, examples: list[Example]) -> float:
    scores = model.negative_probability([e.text for e in examples])
    return float(np.mean((scores >= 0.5) == np.array([e.negative == 1 for e in examples])))


def trained(examples: list[Example]) -> SentimentModel:
    coefficients, intercept = fit(examples)
    return SentimentModel(coefficients, intercept, SETTINGS, "benchmark")


def held_out_split(examples: list[Example], share: float = 0.2, seed: int = 0) -> tuple[list, list]:
    cells: dict[tuple[str, int], list[Example]] = {}
    for e in examples:
        cells.setdefault((e.domain, e.negative), []).append(e)
    rng = random.Random(seed)
    train, test = [], []
    for key in sorted(cells):
        cell = cells[key][:]
        rng.shuffle(cell)
        cut = round(len(cell) * share)
        test += cell[:cut]
        train += cell[cut:]
    return train, test


def read_other(path: Path) -> list[Example]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [
            Example("other", 1 - int(row["label"]), normalise(row["review"]).strip())
            for row in csv.DictReader(handle)
            if row.get("label") in ("0", "1") and (row.get("review") or "").strip()
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--labelled", type=Path, help="a labelled CSV of another domain (label, review)")
    parser.add_argument("--skip-cross", action="store_true", help="leave out the leave-one-domain-out fits")
    args = parser.parse_args()
    examples = read_labelled(args.data)
    print(f"labelled examples: {len(examples):,} in {len({e.domain for e in examples})} domains")

    train, test = held_out_split(examples)
    started = time.perf_counter()
    model = trained(train)
    print(
        f"in-domain (held-out 20 %): {accuracy(model, test):.4f}  (n={len(test):,}; fit {time.perf_counter() - started:.1f} s)"
    )

    if not args.skip_cross:
        print("cross-domain (trained on every other domain):")
        results = []
        for domain in sorted({e.domain for e in examples}):
            held = [e for e in examples if e.domain == domain]
            result = accuracy(trained([e for e in examples if e.domain != domain]), held)
            results.append(result)
            print(f"  {domain:<6} {result:.4f}  (n={len(held):,})")
        print(f"  mean   {np.mean(results):.4f}  min {min(results):.4f}")

    shipped = shipped_model()
    if args.labelled:
        other = read_other(args.labelled)
        print(f"shipped model on {args.labelled.name}: {accuracy(shipped, other):.4f}  (n={len(other):,})")

    texts = [e.text for e in examples[:20000]]
    started = time.perf_counter()
    shipped.negative_probability(texts)
    elapsed = time.perf_counter() - started
    print(
        f"scoring: {len(texts) / elapsed:,.0f} comments/s; model {MODEL_PATH.stat().st_size:,} bytes, version {shipped.version}"
    )


if __name__ == "__main__":
    main()
