"""Speculative decoding inside the continuous-batching scheduler, for a batch of one.

When exactly one request is in the slots (none waiting, none prefilling) and it is decoding, a
draft model (same tokenizer, smaller) proposes k tokens for it, the target scores
[last, d1..dk] in one forward over that slot's row of the ragged KV cache, and the acceptance
rule of `speculative.py` (`verify`) keeps the longest agreeing prefix plus one token, so the
output is distributed exactly as the target alone would make it (greedy: token for token the
same). The target's row is rolled back past rejected drafts by setting its length; the draft
keeps its own cache with one row per slot, and catches up on the tokens it has not seen (those
decoded while other requests shared the batch, the last accepted ones) in one forward at the
start of the next round. As soon as a second request is in, the scheduler decodes normally.

Why only one: a decode step over many slots already keeps the GPU busy, and speculating per
row would need a ragged verify (each row accepting a different count) and per-row draft
forwards; at batch one, decoding is bound by reading the weights and a draft pays most.

Not here: sliding windows, CUDA graphs, and requests that ask for log-probs (those decode
normally). Token ids only.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.inference.sampling import SamplingParams
>>> from scratchllm.inference.slots import Request, SlotBatch
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> slots, spec = SlotBatch(model, n_slots=2), SlotSpeculator(model, n_slots=2, max_len=32, k=3)
>>> seq = slots.admit(0, Request([1, 2, 3], max_new_tokens=9, sampling=SamplingParams(temperature=0)))
>>> with torch.inference_mode():
...     _ = slots.prefill_all()
...     while spec.applies(slots, waiting=0):
...         _ = spec.round(slots)
>>> len(seq.generated), spec.stats.acceptance_rate        # draft = target: every draft is kept
(9, 1.0)
"""

from __future__ import annotations

import torch

from scratchllm.errors import UserError
from scratchllm.inference.slots import Event, SlotBatch
from scratchllm.inference.speculative import SpeculativeStats, verify


def check_draft(target: torch.nn.Module, draft: torch.nn.Module) -> None:
    """One sentence when the draft cannot propose the target's tokens (another vocabulary)."""
    if draft.config.vocab_size != target.config.vocab_size:
        raise UserError(f"the draft model's vocabulary has {draft.config.vocab_size} tokens and the target's "
                        f"{target.config.vocab_size}; use a draft trained with the served run's tokenizer")


class SlotSpeculator:
    """The draft's per-slot cache and one speculative round for the single decoding slot."""

    def __init__(self, draft: torch.nn.Module, n_slots: int, max_len: int, k: int = 4):
        if k < 1:
            raise UserError(f"the number of draft tokens per round must be at least 1, got k={k}")
        self.draft, self.k = draft, k
        self.max_len = min(max_len, draft.config.block_size)
        self.cache = draft.make_kv_cache(batch_size=n_slots, max_len=self.max_len)
        self.cache.set_lengths(torch.zeros(n_slots, dtype=torch.long))
        self.owner: list[object] = [None] * n_slots      # the sequence the draft row was filled for
        self.stats = SpeculativeStats()

    def _room(self, slots: SlotBatch, slot: int) -> int:
        """Drafts this round may propose: the target must feed last + k and still have room for the token
        after them (so the round never ends a sequence on the context mid-way), the draft must fit too."""
        seq = slots.seqs[slot]
        n = len(seq.ids)
        left = seq.request.max_new_tokens - len(seq.generated)
        return min(self.k, slots.max_len - n - 1, self.max_len - n, left - 1)

    def applies(self, slots: SlotBatch, waiting: int) -> bool:
        """True when one request alone is decoding (none waiting) and a round has room for a draft."""
        busy = [i for i, s in enumerate(slots.seqs) if s is not None]
        if waiting or len(busy) != 1 or slots.sliding_window or slots.step.graph is not None:
            return False
        seq = slots.seqs[busy[0]]
        return (seq.decoding and seq.finish_reason is None and seq.window_start == 0
                and seq.request.logprobs is None and self._room(slots, busy[0]) >= 1)

    def _probs(self, slots: SlotBatch, logits: torch.Tensor, slot: int) -> torch.Tensor:
        """The distributions [n, V] the slot's sampling settings draw from (one-hot when greedy)."""
        logits = slots.sampler.mask_vocab(logits.float())
        if slots.sampler.params[slot].temperature == 0:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        return slots.sampler.probs(logits, [slot] * logits.shape[0])

    def _propose(self, slots: SlotBatch, slot: int, k: int) -> tuple[list[int], torch.Tensor]:
        seq, device = slots.seqs[slot], slots.cache.lengths.device
        row = self.cache.rows(slot, slot + 1)
        if self.owner[slot] is not seq:                  # a new request in this slot: the row starts empty
            row.lengths.zero_()
            self.owner[slot] = seq
        pending = seq.ids[int(row.lengths[0]):]          # what the draft has not seen, ending in the last token
        generator = slots.sampler.generators[slot]
        drafted, qs = [], []
        for _ in range(k):
            logits = self.draft(torch.tensor([pending], device=device), kv_cache=row)[0, -1:]   # advances the row
            q = self._probs(slots, logits, slot)
            noise = torch.empty_like(q).exponential_(generator=generator)
            drafted.append(int((q / noise).argmax(-1)[0]))
            qs.append(q[0])
            pending = drafted[-1:]
        return drafted, torch.stack(qs)

    def round(self, slots: SlotBatch) -> list[Event]:
        """Draft, verify in one target forward over the slot's row, accept, roll back; the events."""
        slot = next(i for i, s in enumerate(slots.seqs) if s is not None)
        seq, device = slots.seqs[slot], slots.cache.lengths.device
        n = len(seq.ids)
        drafted, q = self._propose(slots, slot, self._room(slots, slot))
        row = slots.cache.rows(slot, slot + 1)           # holds ids[:n-1]; the last token is fed now
        logits = slots.model(torch.tensor([[seq.ids[-1], *drafted]], device=device), kv_cache=row)[0]
        p = self._probs(slots, logits, slot)
        kept_t, token_t = verify(p[None], q[None], torch.tensor([drafted], device=device),
                                 slots.sampler.generators[slot])
        kept, token = int(kept_t[0]), int(token_t[0])
        self.stats.rounds += 1
        self.stats.proposed += len(drafted)
        self.stats.accepted += kept
        # The draft saw ids[:n] + d1..d(k-1): keep what is still the sequence (n + kept at most).
        draft_row = self.cache.rows(slot, slot + 1)
        draft_row.lengths.clamp_(max=n + kept)
        return slots.accept_verified(slot, drafted[:kept] + [token], fed=1 + kept)
