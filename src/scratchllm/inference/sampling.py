"""Choosing the next token from the model's logits.

- greedy (temperature 0): always the most likely token; deterministic, often repetitive.
- temperature T: sample from softmax(logits / T); T < 1 sharpens the distribution, T > 1 flattens it.
- top-k: sample only among the k most likely tokens.
- top-p (nucleus): sample only among the most likely tokens whose probabilities add up to p.

Filters set the logits of excluded tokens to -inf, so softmax gives them probability 0.
A seeded `torch.Generator` makes sampling reproducible.

`sample_next` applies one setting to every row: the readable reference. `RowSampler` is what
the engine uses: each row of a batch has its own settings and its own seeded generator, all
rows are filtered in one vectorized pass on the device, and a row's samples never depend on
what else is in the batch. It draws by the "exponential race" (argmax p_i / E_i with E_i ~
Exp(1) picks i with probability p_i), so each row's randomness is just V numbers from its
own generator.

>>> import torch
>>> logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
>>> sample_next(logits, temperature=0).tolist()           # greedy
[1]
>>> top_k_filter(logits, 2).tolist()
[[-inf, 3.0, 2.0, -inf]]
>>> gen = make_generator(seed=0)
>>> int(sample_next(logits, temperature=0.8, top_p=0.9, generator=gen)) in (1, 2)
True
>>> sampler = RowSampler(n_rows=2)
>>> sampler.set_row(0, SamplingParams(temperature=0)); sampler.set_row(1, SamplingParams(top_k=1, seed=3))
>>> sampler.sample(logits.repeat(2, 1)).tolist()       # row 0 greedy, row 1 its top-1 token
[1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class SamplingParams:
    """How one row picks its tokens: temperature 0 = greedy; top_k 0/None and top_p 1/None = off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def check(self) -> "SamplingParams":
        check_sampling_args(self.temperature, self.top_k, self.top_p)
        return self


def filtered_probs(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor,
                   top_p: torch.Tensor) -> torch.Tensor:
    """softmax(top_p(top_k(logits / T))) per row, with per-row T [R], k [R] (0 = off), p [R].

    The same distribution `sample_next` draws from, computed with one sort for all rows.
    Rows with T = 0 get the distribution of a tiny temperature (their caller takes the argmax).
    """
    scaled = logits.float() / temperature.clamp_min(1e-5)[:, None]
    sorted_logits, order = scaled.sort(dim=-1, descending=True)
    rank = torch.arange(logits.shape[-1], device=logits.device)[None, :]
    k = torch.where(top_k > 0, top_k, logits.shape[-1])
    sorted_logits = sorted_logits.masked_fill(rank >= k[:, None], float("-inf"))
    probs = sorted_logits.softmax(dim=-1)
    # Nucleus, as in top_p_filter: drop a token once those ahead of it hold mass p; the first stays.
    drop = (probs.cumsum(dim=-1) - probs >= top_p[:, None]) & (top_p[:, None] < 1) & (rank > 0)
    probs = probs.masked_fill(drop, 0.0)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter(-1, order, probs)


class RowSampler:
    """Per-row sampling settings and generators for a batch of `n_rows`; `sample` picks one token a row.

    `vocab_size` (the tokenizer's) masks embedding rows past the vocabulary so they are never picked.
    """

    def __init__(self, n_rows: int, device: torch.device | str = "cpu", vocab_size: int | None = None):
        self.device, self.vocab_size = torch.device(device), vocab_size
        self.params = [SamplingParams(temperature=0)] * n_rows       # host copy: which rows sample
        self.temperature = torch.zeros(n_rows, device=device)
        self.top_k = torch.zeros(n_rows, dtype=torch.long, device=device)
        self.top_p = torch.ones(n_rows, device=device)
        self.generators: list[torch.Generator | None] = [None] * n_rows

    def set_row(self, row: int, params: SamplingParams) -> None:
        """Give `row` its settings (and a fresh generator from its seed): a new request in that row."""
        params.check()
        self.params[row] = params
        self.temperature[row] = params.temperature
        self.top_k[row] = params.top_k or 0
        self.top_p[row] = params.top_p if params.top_p is not None else 1.0
        self.generators[row] = make_generator(params.seed, self.device)

    def probs(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """The distributions rows `rows` sample from, given their logits [len(rows), V]."""
        index = torch.tensor(rows, device=logits.device)
        return filtered_probs(self.mask_vocab(logits), self.temperature[index], self.top_k[index],
                              self.top_p[index])

    def greedy(self, rows: list[int]) -> bool:
        """True if every one of `rows` decodes greedily (temperature 0)."""
        return all(self.params[r].temperature == 0 for r in rows)

    def mask_vocab(self, logits: torch.Tensor) -> torch.Tensor:
        if self.vocab_size is not None and self.vocab_size < logits.shape[-1]:
            logits = logits.clone()
            logits[..., self.vocab_size:] = float("-inf")
        return logits

    def noise(self, rows: list[int], width: int) -> torch.Tensor:
        """Exp(1) noise [len(rows), width]: each seeded row from its own generator, in its own order."""
        out = torch.empty(len(rows), width, device=self.device)
        shared = [i for i, r in enumerate(rows) if self.generators[r] is None]
        if shared:
            out[shared] = torch.empty(len(shared), width, device=self.device).exponential_()
        for i, r in enumerate(rows):
            if self.generators[r] is not None:
                out[i].exponential_(generator=self.generators[r])
        return out

    def sample(self, logits: torch.Tensor, rows: list[int] | None = None) -> torch.Tensor:
        """One token per row of `logits` [R, V] (rows `rows` of the batch; default all): LongTensor [R]."""
        rows = list(range(logits.shape[0])) if rows is None else rows
        logits = self.mask_vocab(logits.float())
        greedy = logits.argmax(dim=-1)
        if self.greedy(rows):
            return greedy                                  # no sort, no noise: the fast common case
        probs = self.probs(logits, rows)
        drawn = (probs / self.noise(rows, probs.shape[-1])).argmax(dim=-1)
        return torch.where(self.temperature[torch.tensor(rows, device=logits.device)] == 0, greedy, drawn)
