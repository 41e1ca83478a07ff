"""Fast, deterministic word and n-gram hashes with numpy: the shared engine of the repetition
filters and of MinHash.

A Python loop over the ~130M words of the Gutenberg set would take minutes, and Python's own
`hash()` changes between processes. Instead the text's UTF-8 bytes become one numpy array and
every word's hash is read off a polynomial prefix hash in a few vectorized passes:

    H[i] = sum_{j<i} (b[j] + 1) * P**j   (mod 2**64, numpy's uint64 wrap-around)
    hash(b[s:e]) = (H[e] - H[s]) * P**-s  (P is odd, so it has an inverse mod 2**64)

so a word's hash depends only on its bytes, not on where it sits. A splitmix64 finalizer then
spreads the bits. Words are runs of ASCII letters/digits or non-ASCII bytes (UTF-8 letters), of
the lower-cased text, so "The" and "the," are the same word.

>>> w = words(" The cat, the CAT! ")
>>> bool(w.hashes[0] == w.hashes[2]), bool(w.hashes[1] == w.hashes[3]), w.lengths.tolist()
(True, True, [3, 3, 3, 3])
>>> ngram_hashes(w.hashes, 2).shape
(3,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_P = np.uint64(0x100000001B3)                  # FNV-1 prime: odd, so invertible mod 2**64
_P_INV = np.uint64(pow(0x100000001B3, -1, 2**64))
_C = np.uint64(0x9E3779B97F4A7C15)              # golden-ratio constant to combine word hashes

_IS_WORD = np.zeros(256, dtype=bool)
for _ch in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _IS_WORD[_ch] = True
_IS_WORD[0x80:] = True  # every byte of a multi-byte UTF-8 character: letters of other scripts
_POW_CACHE: dict[str, np.ndarray] = {}


@dataclass
class Words:
    """The words of a text: 64-bit hashes and lengths in bytes, in order."""
    hashes: np.ndarray  # uint64
    lengths: np.ndarray  # int64


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized: turns structured 64-bit values into uniform ones."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    # P**i and P**-i for i < n, grown geometrically and cached: books are large, cumprod is not free.
    have = _POW_CACHE.get("p")
    if have is None or len(have) < n:
        size = max(n, 2 * len(have) if have is not None else 1 << 16)
        for key, base in (("p", _P), ("q", _P_INV)):
            steps = np.full(size, base, dtype=np.uint64)
            steps[0] = 1
            with np.errstate(over="ignore"):
                _POW_CACHE[key] = np.cumprod(steps, dtype=np.uint64)
    return _POW_CACHE["p"][:n], _POW_CACHE["q"][:n]


def words(text: str) -> Words:
    """Hash every word of `text` (lower-cased; punctuation and spaces separate words)."""
    b = np.frombuffer(text.lower().encode("utf-8"), dtype=np.uint8)
    if b.size == 0:
        return Words(np.zeros(0, np.uint64), np.zeros(0, np.int64))
    isw = _IS_WORD[b]
    edges = np.diff(np.concatenate([[False], isw, [False]]).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return Words(np.zeros(0, np.uint64), np.zeros(0, np.int64))
    pw, ipw = _powers(b.size)
    with np.errstate(over="ignore"):
        prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum((b.astype(np.uint64) + np.uint64(1)) * pw, dtype=np.uint64)])
        h = (prefix[ends] - prefix[starts]) * ipw[starts]
    return Words(mix64(h), (ends - starts).astype(np.int64))


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hashes of the len-n+1 consecutive word n-grams (order-sensitive, mixed)."""
    if len(word_hashes) < n:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        g = word_hashes[: len(word_hashes) - n + 1].copy()
        for j in range(1, n):
            g = g * _C + word_hashes[j : len(word_hashes) - n + 1 + j]
    return mix64(g)
