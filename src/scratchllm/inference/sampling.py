"""Choosing the next token from the model's logits.

- greedy (temperature 0): always the most likely token; deterministic, often repetitive.
- temperature T: sample from softmax(logits / T); T < 1 sharpens the distribution, T > 1 flattens it.
- top-k: sample only among the k most likely tokens.
- top-p (nucleus): sample only among the most likely tokens whose probabilities add up to p.

Filters set the logits of excluded tokens to -inf, so softmax gives them probability 0.
A seeded `torch.Generator` makes sampling reproducible.

>>> import torch
>>> logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
>>> sample_next(logits, temperature=0).tolist()           # greedy
[1]
>>> top_k_filter(logits, 2).tolist()
[[-inf, 3.0, 2.0, -inf]]
>>> gen = make_generator(seed=0)
>>> int(sample_next(logits, temperature=0.8, top_p=0.9, generator=gen)) in (1, 2)
True
"""

from __future__ import annotations

import torch

from scratchllm.errors import UserError


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator | None:
    """A random generator seeded with `seed` on `device` (None: use PyTorch's global generator)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise a UserError for settings that have no meaning."""
    if temperature < 0:
        raise UserError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 0:
        raise UserError(f"top_k must be a positive number of tokens (0 or none = off), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1] (1 = off), got {top_p}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the k largest logits of each row (ties broken by position), the rest -inf."""
    k = min(k, logits.shape[-1])
    top = logits.topk(k, dim=-1)
    # subtle: scatter the k winners rather than compare with the k-th value, which keeps ties too.
    return torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability mass reaches p, the rest -inf."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    # A token is dropped once the tokens ahead of it already hold mass p; the first always stays.
    drop = mass_before >= p
    drop[..., 0] = False
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of `logits` [B, V] (or [V]): a LongTensor [B] (or a 0-d tensor)."""
    check_sampling_args(temperature, top_k, top_p)
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(dim=-1)
    squeeze = logits.dim() == 1
    logits = logits.view(-1, logits.shape[-1]) / temperature
    if top_k:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    ids = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    return ids[0] if squeeze else ids
