"""Comment sentiment (文本情感分析): the probability that a free-text comment is negative.

A linear model over character n-grams of the text: characters carry much of a
Chinese comment's tone (差, 慢, 不, 推诿), so no word segmentation is needed, and a
hashing vectorizer keeps the model a fixed-size array of coefficients with no
vocabulary. The model is trained from labelled reviews only
(pipelines/analytics/train_sentiment.py) and ships in the package as
sentiment_model.npz: plain arrays, loaded without pickle. Nothing is trained or
downloaded at run time.

Probabilities are rounded to PROBABILITY_DECIMALS, so that the same text scores
the same bytes on every run and every machine.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).with_name("sentiment_model.npz")
MODEL_FORMAT = 1
PROBABILITY_DECIMALS = 4
# What the vectorizer must be for the coefficients to mean anything: written by the
# trainer into the model, checked at load.
VECTORIZER_KEYS = {"analyzer", "ngram_range", "n_features", "binary", "norm", "alternate_sign", "lowercase"}


class ModelError(Exception):
    """The shipped sentiment model is missing, damaged or of another format."""


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits to half-width, compatibility forms folded)."""
    return unicodedata.normalize("NFKC", text)


def vectorizer(settings: dict):
    from sklearn.feature_extraction.text import HashingVectorizer  # scikit-learn's import costs ~1 s: here, not at load

    return HashingVectorizer(
        analyzer=settings["analyzer"],
        ngram_range=tuple(settings["ngram_range"]),
        n_features=settings["n_features"],
        binary=settings["binary"],
        norm=settings["norm"],
        alternate_sign=settings["alternate_sign"],
        lowercase=settings["lowercase"],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class SentimentModel:
    coefficients: np.ndarray  # one per hashed n-gram, towards "negative"
    intercept: float
    settings: dict  # the vectorizer's, and how the model was trained (see train_sentiment.py)
    version: str  # first 16 hex digits of the model file's SHA-256: which model scored a text

    def negative_probability(self, texts: Sequence[str]) -> np.ndarray:
        """P(negative) of each text, rounded to PROBABILITY_DECIMALS; an empty text gets NaN."""
        texts = [normalise(t or "").strip() for t in texts]
        scores = np.full(len(texts), np.nan)
        present = [i for i, t in enumerate(texts) if t]
        if present:
            matrix = vectorizer(self.settings).transform([texts[i] for i in present])
            margin = matrix @ self.coefficients.astype(np.float64) + self.intercept
            scores[present] = np.round(1.0 / (1.0 + np.exp(-margin)), PROBABILITY_DECIMALS)
        return scores


def load_model(path: Path = MODEL_PATH) -> SentimentModel:
    try:
        raw = path.read_bytes()
        with np.load(path, allow_pickle=False) as arrays:
            coefficients = arrays["coefficients"]
            intercept = float(arrays["intercept"])
            settings = json.loads(str(arrays["settings"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ModelError(
            f"{path}: not a readable sentiment model ({error}); rebuild it with "
            "`python -m pipelines.analytics.train_sentiment`"
        ) from None
    if settings.get("format") != MODEL_FORMAT or not set(settings) >= VECTORIZER_KEYS:
        raise ModelError(f"{path}: sentiment model of format {settings.get('format')!r}, expected {MODEL_FORMAT}")
    if coefficients.shape != (settings["n_features"],):
        raise ModelError(f"{path}: {coefficients.shape[0]} coefficients for {settings['n_features']} features")
    return SentimentModel(coefficients, intercept, settings, hashlib.sha256(raw).hexdigest()[:16])


@cache
def shipped_model() -> SentimentModel:
    return load_model(MODEL_PATH)
