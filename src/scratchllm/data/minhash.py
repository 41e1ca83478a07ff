"""MinHash signatures and the LSH banding that turns them into near-duplicate candidates.

MinHash (Broder 1997): for a random permutation h of the shingle universe, the probability
that two sets have the same minimum, P[min h(A) = min h(B)], equals their Jaccard similarity
|A ∩ B| / |A ∪ B|. Shingles are word 5-grams hashed to 64 bits (`textstats`).

Classic MinHash applies `num_perm` hash functions to every shingle: 128 multiply-adds per
shingle, ~1 MB/s per core on books. We use one-permutation hashing instead (Li, Owen & Zhang
2012): permute once (a seeded 64-bit mix), split the permuted range into `num_perm` bins by the
hash's high bits, and keep the minimum (low 32 bits) in each bin. Each bin is a MinHash over a
random part of the shingle set, so P[bin_i(A) = bin_i(B)] is again the Jaccard similarity, at
one hash per shingle (>10x faster; `np.minimum.at` does the per-bin min in C). A bin left empty
(only in documents with few shingles) borrows the value of the next non-empty bin to its
right, offset by the distance ("rotation densification", Shrivastava & Li 2014), so that two
near-identical short documents still agree there.

LSH banding: split the signature into b bands of r rows. Two documents become candidates if
they agree on all r rows of at least one band, which happens with probability

    P(candidate | Jaccard s) = 1 - (1 - s**r)**b          (the "S-curve")

`choose_bands` picks (b, r) with b*r <= num_perm that minimises the false-positive area
(∫_0^t P ds) plus the false-negative area (∫_t^1 1-P ds) around the threshold t.

>>> m = MinHasher(num_perm=128, shingle=3, seed=0)
>>> a = m.signature("the quick brown fox jumps over the lazy dog near the river bank today")
>>> b = m.signature("the quick brown fox jumps over the lazy dog near the river bank")
>>> 0.7 < estimate_jaccard(a, b) <= 1.0
True
>>> choose_bands(0.8, 128)
(9, 13)
"""

from __future__ import annotations

import numpy as np

from scratchllm.data.textstats import mix64, ngram_hashes, words

_EMPTY = np.uint32(0xFFFFFFFF)
_OFFSET = np.uint32(0x9E3779B1)  # odd: distinct offsets for distinct borrowing distances


def s_curve(s: np.ndarray | float, bands: int, rows: int) -> np.ndarray | float:
    """Probability that two documents of Jaccard similarity s share at least one band."""
    return 1.0 - (1.0 - np.asarray(s, dtype=np.float64) ** rows) ** bands


def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false-positive plus false-negative area of the S-curve at `threshold`."""
    xs_lo = np.linspace(0.0, threshold, 201)
    xs_hi = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for rows in range(1, num_perm + 1):
        for bands in range(1, num_perm // rows + 1):
            fp = np.trapezoid(s_curve(xs_lo, bands, rows), xs_lo)
            fn = np.trapezoid(1.0 - s_curve(xs_hi, bands, rows), xs_hi)
            if fp + fn < best_err - 1e-12:
                best, best_err = (bands, rows), fp + fn
    return best


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of equal signature entries: an unbiased estimate of the Jaccard similarity."""
    return float(np.mean(a == b))


class MinHasher:
    """Computes `num_perm`-entry one-permutation MinHash signatures (uint32) of word-shingle sets."""

    def __init__(self, num_perm: int = 128, shingle: int = 5, seed: int = 0):
        self.num_perm = num_perm
        self.shingle = shingle
        self.salt = np.uint64(np.random.default_rng(seed).integers(0, 2**63))

    def shingles(self, text: str) -> np.ndarray:
        """Hashed word n-grams of `text` (a short text is one shingle of all its words)."""
        h = words(text).hashes
        if len(h) == 0:
            return h
        return ngram_hashes(h, min(self.shingle, len(h)))

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature of `text`; all-max (uint32) for a text without words."""
        h = mix64(self.shingles(text) ^ self.salt)  # the one permutation
        bins = ((h >> np.uint64(32)) % np.uint64(self.num_perm)).astype(np.intp)
        sig = np.full(self.num_perm, _EMPTY, dtype=np.uint32)
        np.minimum.at(sig, bins, (h & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        empty = sig == _EMPTY
        if empty.any() and not empty.all():
            filled = np.flatnonzero(~empty)
            idx = np.arange(self.num_perm)
            # next filled bin to the right, wrapping around
            pos = np.searchsorted(filled, idx) % len(filled)
            dist = (filled[pos] - idx) % self.num_perm
            with np.errstate(over="ignore"):
                sig = np.where(empty, sig[filled[pos]] + (dist * _OFFSET).astype(np.uint32), sig)
        return sig
