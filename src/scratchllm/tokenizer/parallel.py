"""Encoding many texts on several processes: each worker gets the tokenizer once, then texts.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
>>> parallel_encode(tok, ["ab", "c"] * 4, num_workers=2, kwargs={})[:2]
[[97, 98], [99]]
"""

from __future__ import annotations

from scratchllm.utils.pool import FORK_IF_AVAILABLE, ordered_map

_worker_tok = None  # the tokenizer inside a worker process


def _init(tok) -> None:
    global _worker_tok
    _worker_tok = tok


def _encode_many(args: tuple[list[str], dict]) -> list[list[int]]:
    texts, kwargs = args
    return [_worker_tok.encode(t, **kwargs) for t in texts]


def parallel_encode(tok, texts: list[str], num_workers: int, kwargs: dict) -> list[list[int]]:
    """`tok.encode(t, **kwargs)` for each text, in order, on `num_workers` processes."""
    # a few batches a worker balances load without paying per-text messaging costs
    n_batches = num_workers * 4
    size = max(1, -(-len(texts) // n_batches))
    batches = [(texts[i:i + size], kwargs) for i in range(0, len(texts), size)]
    out: list[list[int]] = []
    for _, part in ordered_map(_encode_many, batches, num_workers, _init, (tok,), start_method=FORK_IF_AVAILABLE):
        out.extend(part)
    return out
