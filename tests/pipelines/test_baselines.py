"""n-gram baselines against a direct, dictionary-counting oracle."""

import math
from collections import Counter

import numpy as np
import pytest

from scratchllm.pipelines.baselines import bigram_bits, unigram_bits


def _oracle(train, val, V):
    uni_c, pair_c = Counter(train), Counter(zip(train, train[1:]))
    ctx_c = Counter(train[:-1])
    followers = {a: len({b for (x, b) in pair_c if x == a}) for a in ctx_c}

    def uni(b):
        return (uni_c[b] + 1) / (len(train) + V)

    def bi(a, b):
        if ctx_c[a] == 0:
            return uni(b)
        return (pair_c[(a, b)] + followers[a] * uni(b)) / (ctx_c[a] + followers[a])

    u = -sum(math.log2(uni(b)) for b in val)
    bg = -math.log2(uni(val[0])) - sum(math.log2(bi(a, b)) for a, b in zip(val, val[1:]))
    return u, bg


def test_unigram_and_bigram_match_the_oracle():
    rng = np.random.default_rng(0)
    V = 12
    train = rng.integers(0, 9, size=500)  # ids 9..11 never seen in train: smoothing must cover them
    val = np.concatenate([rng.integers(0, V, size=100), [11, 3]])
    u, b = _oracle(train.tolist(), val.tolist(), V)
    assert unigram_bits(train, val, V) == pytest.approx(u, rel=1e-12)
    assert bigram_bits(train, val, V) == pytest.approx(b, rel=1e-12)


def test_bigram_beats_unigram_on_structured_text():
    seq = np.array([i % 7 for i in range(1000)])
    assert bigram_bits(seq, seq[:200], 7) < 0.1 * unigram_bits(seq, seq[:200], 7)
