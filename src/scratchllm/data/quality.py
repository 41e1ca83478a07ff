"""A quality classifier written here: logistic regression on hashed word n-grams, the linear
half of fastText (Joulin et al. 2017) as GPT-3 and Llama used it to keep web pages that look
like reference text (books, Wikipedia) and drop the rest.

Features: a document's lower-cased words and word bigrams (the shared `textstats` hashes),
each hashed into one of 2**18 buckets, counted and L2-normalised, so long and short pages
score on the same scale. The model is one weight per bucket and a bias, trained by mini-batch
gradient descent (Adagrad steps, L2 penalty) on label 1 = reference, 0 = web; `score` is
P(reference). The filter keeps a page if score >= threshold.

A trained model is one safetensors file: the weights, and in its metadata the bucket count,
n-gram order and the held-out accuracy measured when it was trained (the report shows it).

This module knows nothing of files of documents: texts and labels in, a model out.

>>> good = ["The history of the river valley is long, and the town grew along its banks."] * 20
>>> bad = ["click here buy now free offer click here best price buy now"] * 20
>>> model = train(good + bad, [1] * 20 + [0] * 20, epochs=5, seed=0)
>>> model.score(good[0]) > 0.5 > model.score(bad[0])
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from scratchllm.data.textstats import ngram_hashes, words
from scratchllm.errors import UserError
from scratchllm.utils.atomic import atomic_write_bytes

DEFAULT_BUCKETS = 1 << 18


@dataclass
class QualityConfig:
    """The quality filter: a trained model file and the score a page needs to be kept."""
    enabled: bool = False
    model: str = ""               # safetensors file from `scratchllm data quality-train`
    threshold: float = 0.5


def features(text: str, buckets: int = DEFAULT_BUCKETS, ngrams: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, L2-normalised counts) of the text's word 1..n-grams."""
    w = words(text).hashes
    grams = [w] + [ngram_hashes(w, n) for n in range(2, ngrams + 1)]
    h = np.concatenate(grams) if grams else np.zeros(0, np.uint64)
    if h.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    idx, counts = np.unique((h % np.uint64(buckets)).astype(np.int64), return_counts=True)
    vals = counts.astype(np.float32)
    return idx, vals / np.linalg.norm(vals)


@dataclass
class QualityModel:
    """Weights per hash bucket, a bias, and what the model was measured at."""
    weights: np.ndarray
    bias: float
    ngrams: int = 2
    heldout_accuracy: float | None = None
    trained_on: dict | None = None

    def logit(self, text: str) -> float:
        idx, vals = features(text, len(self.weights), self.ngrams)
        return float(self.weights[idx] @ vals + self.bias)

    def score(self, text: str) -> float:
        """P(reference-like) of one document."""
        return float(1.0 / (1.0 + np.exp(-self.logit(text))))

    def save(self, path: str) -> None:
        meta = {"bias": repr(float(self.bias)), "ngrams": str(self.ngrams),
                "heldout_accuracy": json.dumps(self.heldout_accuracy), "trained_on": json.dumps(self.trained_on)}
        atomic_write_bytes(path, save({"weights": self.weights.astype(np.float32)}, metadata=meta))


def load_model(path: str) -> QualityModel:
    """Read a model file written by `QualityModel.save` (one clear error if it is not one)."""
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
        weights = load_file(path)["weights"]
        return QualityModel(weights, float(meta["bias"]), int(meta["ngrams"]),
                            json.loads(meta.get("heldout_accuracy", "null")), json.loads(meta.get("trained_on", "null")))
    except (OSError, KeyError, ValueError, SafetensorError) as e:
        raise UserError(f"'{path}' is not a quality model ({type(e).__name__}); train one with "
                        f"`scratchllm data quality-train`") from None


def train(texts: list[str], labels: list[int], buckets: int = DEFAULT_BUCKETS, ngrams: int = 2, epochs: int = 10,
          lr: float = 0.5, l2: float = 1e-6, batch: int = 32, seed: int = 0) -> QualityModel:
    """Fit the logistic regression by mini-batch Adagrad; classes are weighted to count equally."""
    if len(set(labels)) != 2:
        raise UserError("the quality classifier needs both reference (1) and web (0) documents; give it both")
    feats = [features(t, buckets, ngrams) for t in texts]
    y = np.asarray(labels, dtype=np.float32)
    # balance: a 10:1 corpus would otherwise learn "always web"
    class_w = {c: len(y) / (2.0 * float((y == c).sum())) for c in (0.0, 1.0)}
    w = np.zeros(buckets, np.float32)
    g2 = np.full(buckets, 1e-8, np.float32)  # Adagrad's running sum of squared gradients
    b, gb2 = 0.0, 1e-8
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            idx = np.concatenate([feats[r][0] for r in rows])
            vals = np.concatenate([feats[r][1] for r in rows])
            owner = np.repeat(np.arange(len(rows)), [len(feats[r][0]) for r in rows])
            z = np.bincount(owner, weights=w[idx] * vals, minlength=len(rows)) + b
            p = 1.0 / (1.0 + np.exp(-z))
            err = (p - y[rows]) * np.array([class_w[float(y[r])] for r in rows]) / len(rows)
            # dense steps over all buckets: bincount and vector ops beat fancy indexing here
            grad = np.bincount(idx, weights=err[owner] * vals, minlength=buckets).astype(np.float32) + l2 * w
            g2 += grad * grad
            w -= lr * grad / np.sqrt(g2)
            gb = float(err.sum())
            gb2 += gb * gb
            b -= lr * gb / np.sqrt(gb2)
    return QualityModel(w, b, ngrams)


def accuracy(model: QualityModel, texts: list[str], labels: list[int], threshold: float = 0.5) -> float:
    """Share of documents on the right side of the threshold."""
    hits = sum((model.score(t) >= threshold) == bool(y) for t, y in zip(texts, labels))
    return hits / max(len(texts), 1)


def split_heldout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out row indices: a seeded shuffle, `fraction` held out (at least one)."""
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * fraction)))
    return order[k:], order[:k]
