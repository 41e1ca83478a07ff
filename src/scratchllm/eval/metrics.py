"""Aggregate figures: means with standard errors, perplexities, pass@k.

Standard errors follow lm-evaluation-harness: the sample standard deviation (n-1) over sqrt(n)
for a mean of per-item scores. Perplexities are corpus-level (total log-likelihood over total
words or bytes), which has no per-item standard error; they report None.

pass@k is Chen et al. (2021)'s unbiased estimator: with n samples of which c pass, the chance
that at least one of k samples drawn without replacement passes, 1 - C(n-c, k) / C(n, k),
computed as a product so it never overflows.

>>> mean_stderr([1, 0, 1, 1])
(0.75, 0.25)
>>> round(pass_at_k(n=5, c=2, k=2), 4)
0.7
"""

from __future__ import annotations

import math
from typing import Sequence


def mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and its standard error (None for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (requires k <= n)."""
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i)  ==  1 - C(n-c, k)/C(n, k)
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def perplexities(total_ll: float, words: int, bytes_: int) -> dict[str, float]:
    """word_perplexity, byte_perplexity and bits_per_byte of a corpus from its total log-likelihood (nats)."""
    return {"word_perplexity": math.exp(-total_ll / words),
            "byte_perplexity": math.exp(-total_ll / bytes_),
            "bits_per_byte": -total_ll / bytes_ / math.log(2)}
