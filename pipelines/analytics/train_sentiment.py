"""Train the comment sentiment model from labelled reviews, reproducibly.

    python -m pipelines.analytics.train_sentiment [--data DIR] [--out FILE]

reads DIR/online_shopping_9_cats.csv (cat, label, review) and DIR/waimai_10k.csv
(label, review), label 1 positive and 0 negative (default DIR: the copy in
tests/data/real/zh_sentiment), and writes the model the package ships
(pipelines/analytics/sentiment_model.npz). No other labelled data is used.

The same data gives the same bytes: the examples are put in a fixed order, the
solver (liblinear) is seeded, the coefficients are stored as float16 and the
.npz is written with fixed member dates and without compression (deflate's bytes
depend on the zlib build). tests/test_sentiment.py rebuilds the model and
compares bytes.

What is meant to make it carry to comments of another domain (government
services, which no labelled data covers):
- each domain (a shopping category, or food delivery) weighs the same in the fit,
  and within it the two labels weigh the same, so that the words of a domain that
  happens to be mostly negative (food delivery: two thirds) are not learnt as
  negative words;
- character 1-3 grams counted as present or not (binary): tone words and their
  negations (不好, 不错, 太慢), not how often a long review repeats them;
- C = 3, chosen by leave-one-domain-out accuracy (benchmarks/sentiment_accuracy.py),
  not by the held-out split of the domains it was trained on.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.analytics.sentiment import MODEL_FORMAT, MODEL_PATH, normalise, vectorizer
from pipelines.settings import PROJECT_ROOT

DEFAULT_DATA = PROJECT_ROOT / "tests" / "data" / "real" / "zh_sentiment"
SETTINGS = {
    "format": MODEL_FORMAT,
    "analyzer": "char",
    "ngram_range": [1, 3],
    "n_features": 2**20,
    "binary": True,
    "norm": "l2",
    "alternate_sign": False,
    "lowercase": True,
    "C": 3.0,
    "solver": "liblinear",
    "seed": 0,
    "weighting": "domain x label balanced",
}
FIXED_DATE = (2026, 1, 1, 0, 0, 0)  # of the .npz's members: the bytes must not carry the build time


@dataclass(frozen=True)
class Example:
    domain: str
    negative: int  # 1 negative, 0 positive
    text: str


def read_labelled(data_dir: Path) -> list[Example]:
    """The labelled reviews, normalised; a text given twice counts once, and a text
    given with both labels is left out. In a fixed order (domain, text)."""
    labels: dict[tuple[str, str], set[int]] = {}
    files = (("online_shopping_9_cats.csv", None), ("waimai_10k.csv", "外卖"))
    for name, domain in files:
        path = data_dir / name
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                text = normalise((row.get("review") or "").lstrip("\ufeff")).strip()
                if not text:
                    continue
                if row.get("label") not in ("0", "1"):
                    raise ValueError(f"{path}: line {line}, column label: {row.get('label')!r} is not 0 or 1")
                key = (domain or row["cat"], text)
                labels.setdefault(key, set()).add(1 - int(row["label"]))
    return [Example(d, next(iter(v)), t) for (d, t), v in sorted(labels.items()) if len(v) == 1]


def balanced_weights(examples: list[Example]) -> np.ndarray:
    """Every (domain, label) cell the same total weight; mean weight 1."""
    counts: dict[tuple[str, int], int] = {}
    for e in examples:
        counts[e.domain, e.negative] = counts.get((e.domain, e.negative), 0) + 1
    weights = np.array([1.0 / counts[e.domain, e.negative] for e in examples])
    return weights * len(examples) / weights.sum()


def fit(examples: list[Example], settings: dict = SETTINGS) -> tuple[np.ndarray, float]:
    """(coefficients as float16, intercept) of a logistic regression towards 'negative'."""
    from sklearn.linear_model import LogisticRegression

    matrix = vectorizer(settings).transform([e.text for e in examples])
    model = LogisticRegression(C=settings["C"], solver=settings["solver"], random_state=settings["seed"], max_iter=1000)
    model.fit(matrix, np.array([e.negative for e in examples]), sample_weight=balanced_weights(examples))
    return model.coef_[0].astype(np.float16), round(float(model.intercept_[0]), 6)


def model_bytes(coefficients: np.ndarray, intercept: float, settings: dict = SETTINGS) -> bytes:
    """The .npz (a zip of .npy arrays, no pickle) with fixed member dates and order, stored
    uncompressed: deflate's output differs between zlib builds, a stored member never."""
    arrays = {
        "coefficients": coefficients,
        "intercept": np.array(intercept, dtype=np.float64),
        "settings": np.array(json.dumps(settings, sort_keys=True, ensure_ascii=False)),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def build(data_dir: Path = DEFAULT_DATA) -> bytes:
    coefficients, intercept = fit(read_labelled(data_dir))
    return model_bytes(coefficients, intercept)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the two labelled CSV files")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="where to write the model (.npz)")
    args = parser.parse_args(argv)
    data = build(args.data)
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
