"""The yardsticks a language model must beat: unigram and bigram models, in bits per byte.

Both are fitted by counting on the train split and scored on the whole val split of the same
token directory, so their figures sit next to the transformer's val bits-per-byte.

- unigram, add-one smoothed: p(b) = (c(b) + 1) / (N + V). Knows which tokens are common.
- bigram, Witten-Bell interpolated with that unigram:
  p(b | a) = (c(a, b) + T(a) · p(b)) / (c(a) + T(a)), with T(a) the number of distinct tokens
  seen after a. A context seen with many different followers trusts its own counts less and
  the unigram more; an unseen context falls back to the unigram entirely. No tuning needed,
  and much stronger than add-one at a vocabulary of thousands.

Bits per byte = total bits over the val tokens / UTF-8 bytes of the val text.

>>> import numpy as np
>>> train = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
>>> bits = bigram_bits(train, np.array([0, 1, 2]), vocab_size=3)
>>> round(float(bits), 2) < round(float(unigram_bits(train, np.array([0, 1, 2]), 3)), 2)
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scratchllm.data.shards import list_shards, read_shard
from scratchllm.data.tokenize import read_meta

MAX_FIT_TOKENS = 50_000_000  # counting beyond this changes the figures little and costs memory


def unigram_probs(train: np.ndarray, vocab_size: int) -> np.ndarray:
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64)
    return (counts + 1) / (counts.sum() + vocab_size)


def unigram_bits(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Total bits the add-one unigram spends on `val`."""
    return float(-np.log2(unigram_probs(train, vocab_size)[val]).sum())


def bigram_bits(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Total bits the Witten-Bell bigram spends on `val` (its first token scored by the unigram)."""
    V = vocab_size
    uni = unigram_probs(train, V)
    pairs, pair_counts = np.unique(train[:-1] * V + train[1:], return_counts=True)
    ctx = pairs // V
    c_ctx = np.bincount(ctx, weights=pair_counts, minlength=V)  # c(a): times a is followed by anything
    t_ctx = np.bincount(ctx, minlength=V).astype(np.float64)   # T(a): distinct followers of a
    a, b = val[:-1], val[1:]
    keys = a * V + b
    pos = np.clip(np.searchsorted(pairs, keys), 0, len(pairs) - 1)
    c_ab = np.where(pairs[pos] == keys, pair_counts[pos], 0).astype(np.float64)
    denom = c_ctx[a] + t_ctx[a]
    p = np.where(denom > 0, (c_ab + t_ctx[a] * uni[b]) / np.maximum(denom, 1), uni[b])
    return float(-np.log2(uni[val[0]]) - np.log2(p).sum())


def split_tokens(token_dir: Path, split: str, limit: int) -> np.ndarray:
    parts, total = [], 0
    for path in list_shards(token_dir, split):
        shard = read_shard(path)[: max(0, limit - total)]
        parts.append(np.asarray(shard, dtype=np.int64))
        total += len(shard)
        if total >= limit:
            break
    return np.concatenate(parts)


def text_baselines(token_dir: str | Path, ids: np.ndarray, n_bytes: int) -> dict[str, float]:
    """{"unigram_bpb", "bigram_bpb"} of token ids `ids` (some other text: WikiText-2), fitted on `token_dir`'s train."""
    train = split_tokens(Path(token_dir), "train", MAX_FIT_TOKENS)
    vocab = read_meta(token_dir)["vocab_size"]
    return {"unigram_bpb": unigram_bits(train, ids, vocab) / n_bytes,
            "bigram_bpb": bigram_bits(train, ids, vocab) / n_bytes}


def ngram_baselines(token_dir: str | Path) -> dict[str, float]:
    """{"unigram_bpb", "bigram_bpb"} on the val split of `token_dir`, fitted on (up to 50M tokens of) train."""
    token_dir = Path(token_dir)
    meta = read_meta(token_dir)
    V = meta["vocab_size"]
    train = split_tokens(token_dir, "train", MAX_FIT_TOKENS)
    val = split_tokens(token_dir, "val", 2**62)
    val_bytes = meta["splits"]["val"]["bytes"]
    return {"unigram_bpb": unigram_bits(train, val, V) / val_bytes,
            "bigram_bpb": bigram_bits(train, val, V) / val_bytes}
