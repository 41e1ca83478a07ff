"""Speculative decoding: a cheap draft proposes k tokens, the target checks them in one forward.

Decoding is memory-bound: one forward reads all the target's weights to make one token, and a
forward over k+1 tokens costs about the same. So a draft (a small model, or a lookup of the
last n-gram earlier in the text, "prompt lookup") guesses d1..dk, the target scores
[last, d1..dk] at once, giving its distributions p1..p(k+1), and we keep the longest prefix it
agrees with. The rule (Leviathan et al. 2023; Chen et al. 2023) keeps the output distributed
exactly as the target alone would sample it, whatever the draft:

    accept d_i with probability min(1, p_i(d_i) / q_i(d_i))            (q_i: the draft's distribution)
    at the first rejection, sample from norm(max(0, p_i − q_i)) and stop;
    if all k are accepted, sample one more from p(k+1).

P(token = x) = q(x)·min(1, p(x)/q(x)) + (1 − Σ min(p, q))·max(0, p(x) − q(x))/Σ max(0, p − q)
             = min(p, q)(x) + max(0, p − q)(x) = p(x).
Greedy decoding is the same rule with one-hot p and q: a draft is kept exactly when it is the
target's argmax, so the output is token for token the target's. An n-gram draft is
deterministic, so its q is one-hot at its guess.

Each round costs k draft forwards + one target forward and yields 1..k+1 tokens; the
acceptance rate (kept / proposed) says how well the draft guesses. One sequence at a time,
on plain (uniform) KV caches that are rolled back past rejected drafts.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> target = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=64)).eval()
>>> stream = speculative_generate(target, [1, 2, 3], draft=target, k=4, max_new_tokens=12, temperature=0)
>>> len(list(stream)), stream.finish_reason, stream.stats.acceptance_rate   # draft = target: all kept
(12, 'length', 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from scratchllm.errors import UserError
from scratchllm.inference.sampling import SamplingParams, filtered_probs, make_generator
from scratchllm.inference.slots import check_prompt


@dataclass
class SpeculativeStats:
    """Counts over a generation: rounds (target forwards), drafts proposed and drafts kept."""

    rounds: int = 0
    proposed: int = 0
    accepted: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


def verify(p: torch.Tensor, q: torch.Tensor, drafted: torch.Tensor,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The acceptance rule for R rows at once: p [R, k+1, V] (target), q [R, k, V] (draft),
    drafted [R, k] → (number of drafts kept [R], the token after them [R])."""
    rows, k = drafted.shape
    p_d = p[:, :k].gather(-1, drafted[..., None])[..., 0]
    q_d = q.gather(-1, drafted[..., None])[..., 0]
    u = torch.rand(rows, k, generator=generator, device=p.device)
    kept = (u * q_d < p_d).long().cumprod(dim=-1).sum(dim=-1)          # the leading run of acceptances
    at = torch.arange(rows, device=p.device)
    q_after = torch.cat([q, torch.zeros_like(p[:, :1])], dim=1)[at, kept]   # no draft after the k-th: q = 0
    residual = (p[at, kept] - q_after).clamp_min(0)
    # subtle: where p == q the residual is all zero, but then the draft was kept with certainty and
    # we never get here with it; fall back to p so the division below never meets an empty row.
    empty = residual.sum(dim=-1, keepdim=True) <= 0
    residual = torch.where(empty, p[at, kept], residual)
    noise = torch.empty_like(residual).exponential_(generator=generator)
    return kept, (residual / noise).argmax(dim=-1)


class SpeculativeStream:
    """Tokens of one speculative generation as they are kept; then `finish_reason` and `stats`."""

    def __init__(self, target, prompt_ids, draft, k, max_new_tokens, sampling: SamplingParams,
                 stop_ids, vocab_size, ngram):
        cfg = target.config
        check_prompt(len(prompt_ids), cfg.block_size)
        sampling.check()
        if k < 1:
            raise UserError(f"the number of draft tokens per round must be at least 1, got k={k}")
        if draft != "ngram" and draft.config.vocab_size != cfg.vocab_size:
            raise UserError(f"the draft model's vocabulary has {draft.config.vocab_size} tokens and the target's "
                            f"{cfg.vocab_size}; use a draft trained with the target's tokenizer (or --draft ngram)")
        self.target, self.draft, self.k, self.ngram = target, draft, k, ngram
        self.sampling, self.stop_ids, self.vocab_size = sampling, set(stop_ids), vocab_size
        self.max_new_tokens = max_new_tokens
        self.ids = [int(i) for i in prompt_ids]
        self.stats, self.finish_reason = SpeculativeStats(), None
        self.generator = make_generator(sampling.seed, target.tok_emb.weight.device)
        self._tokens = self._run()

    def __iter__(self) -> "SpeculativeStream":
        return self

    def __next__(self) -> int:
        return next(self._tokens)

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The distributions [n, V] the sampling settings draw from (one-hot at the argmax when greedy)."""
        logits = logits.float()
        if self.vocab_size is not None and self.vocab_size < logits.shape[-1]:
            logits[:, self.vocab_size:] = float("-inf")
        s, n = self.sampling, logits.shape[0]
        if s.temperature == 0:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        full = lambda value, dtype=torch.float: torch.full((n,), value, dtype=dtype, device=logits.device)
        return filtered_probs(logits, full(s.temperature), full(s.top_k or 0, torch.long),
                              full(s.top_p if s.top_p is not None else 1.0))

    def _run(self) -> Iterator[int]:
        device = self.target.tok_emb.weight.device
        block = self.target.config.block_size
        with torch.inference_mode():
            target_cache = self.target.make_kv_cache()
            draft_cache = self.draft.make_kv_cache() if self.draft != "ngram" else None
        made = 0
        while True:
            if made >= self.max_new_tokens:
                self.finish_reason = "length"
                return
            if len(self.ids) > block:                 # the last token would need a position past the context
                self.finish_reason = "context"
                return
            with torch.inference_mode():
                new = self._round(target_cache, draft_cache, min(self.k, block - len(self.ids)), device)
            for token in new:
                if token in self.stop_ids:
                    self.finish_reason = "stop"
                    return
                self.ids.append(token)
                made += 1
                yield token
                if made >= self.max_new_tokens:
                    break

    def _round(self, target_cache, draft_cache, k: int, device) -> list[int]:
        """Propose up to k drafts, verify them with one target forward; returns the tokens kept + one."""
        n = len(self.ids)
        drafted, q = self._propose(draft_cache, k, device) if k > 0 else ([], None)
        pending = self.ids[target_cache.pos:] + drafted
        logits = self.target(torch.tensor([pending], device=device), kv_cache=target_cache)[0, -(len(drafted) + 1):]
        p = self._probs(logits)
        self.stats.rounds += 1
        if not drafted:
            kept, token = 0, int((p / torch.empty_like(p).exponential_(generator=self.generator)).argmax(-1)[0])
        else:
            kept_t, token_t = verify(p[None], q[None], torch.tensor([drafted], device=device), self.generator)
            kept, token = int(kept_t[0]), int(token_t[0])
        self.stats.proposed += len(drafted)
        self.stats.accepted += kept
        target_cache.truncate(n + kept)               # keep the last token and the kept drafts
        if draft_cache is not None:
            draft_cache.truncate(min(draft_cache.pos, n + kept))
        return drafted[:kept] + [token]

    def _propose(self, draft_cache, k: int, device) -> tuple[list[int], torch.Tensor]:
        """k draft tokens and the draft's distributions q [k, V] they were drawn from."""
        if self.draft == "ngram":
            drafted = ngram_lookup(self.ids, k, self.ngram)
            vocab = self.target.config.vocab_size
            return drafted, torch.nn.functional.one_hot(torch.tensor(drafted, dtype=torch.long), vocab).float().to(device)
        k = min(k, self.draft.config.block_size - len(self.ids) + 1)
        drafted, qs = [], []
        pending = self.ids[draft_cache.pos:]
        for _ in range(max(k, 0)):
            logits = self.draft(torch.tensor([pending], device=device), kv_cache=draft_cache)[:, -1]
            q = self._probs(logits)
            token = int((q / torch.empty_like(q).exponential_(generator=self.generator)).argmax(-1)[0])
            drafted.append(token)
            qs.append(q[0])
            pending = [token]
        return drafted, torch.stack(qs) if qs else None


def ngram_lookup(ids: list[int], k: int, n: int = 3) -> list[int]:
    """Prompt lookup: the k tokens that followed the latest earlier occurrence of the last n tokens
    (trying n, n-1, .. 1); [] when the text has no such repeat.

    >>> ngram_lookup([5, 6, 7, 8, 9, 5, 6], k=2)
    [7, 8]
    """
    for size in range(min(n, len(ids) - 1), 0, -1):
        tail = ids[-size:]
        for start in range(len(ids) - size - 1, -1, -1):
            if ids[start:start + size] == tail:
                return ids[start + size:start + size + k]
    return []


def speculative_generate(target: torch.nn.Module, prompt_ids: Iterable[int], draft="ngram", k: int = 4,
                         max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
                         top_p: float | None = None, stop_ids: Iterable[int] = (), seed: int | None = None,
                         vocab_size: int | None = None, ngram: int = 3) -> SpeculativeStream:
    """Generate from `target` with drafts from `draft` (a smaller model with the same vocabulary, or
    "ngram" for prompt lookup); the output follows the target's own distribution."""
    return SpeculativeStream(target, list(prompt_ids), draft, k, max_new_tokens,
                             SamplingParams(temperature, top_k, top_p, seed), stop_ids, vocab_size, ngram)
