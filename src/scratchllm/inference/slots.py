"""The engine's core: a fixed number of slots over one KV cache, each holding one sequence.

A slot is one row of a ragged KV cache of fixed capacity. A request is *admitted* into a free
slot, *prefilled* (its prompt's keys and values written into its row, in chunks if a token
budget asks for it), then *decoded* one token a step together with every other decoding slot,
and *released* when it finishes, so that the next request can take the row. Batched
generation (all requests admitted at once) and continuous batching (requests come and go
between steps, `scheduler.py`) are both this one loop, driven differently.

Each accepted token is checked on the host, in this order:
- a stop id → finish "stop" (the stop id is not part of the output);
- `max_new_tokens` reached → finish "length";
- the slot's row full (`max_len` positions, normally the model's block_size) → finish
  "context", unless `sliding_window`: then the cache is recomputed from the last 3/4 of the
  context (a fresh prefill at positions 0..), and the sequence goes on. Positions restart, so
  the model sees a shorter context, never a position it was not trained on.

Token ids only: text and stop strings live one layer up (`engine.py`).

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> slots = SlotBatch(model, n_slots=2)
>>> seq = slots.admit(0, Request([1, 2, 3], max_new_tokens=4, sampling=SamplingParams(temperature=0)))
>>> with torch.inference_mode():
...     while slots.busy():
...         events = slots.prefill_all() + slots.decode()
>>> len(seq.generated), seq.finish_reason
(4, 'length')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from scratchllm.errors import UserError
from scratchllm.inference.decode_step import DecodeStep
from scratchllm.inference.sampling import RowSampler, SamplingParams


@dataclass
class Request:
    """What to generate: a prompt of token ids, a token budget, sampling settings, stop ids."""

    prompt: list[int]
    max_new_tokens: int = 100
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop_ids: tuple[int, ...] = ()
    logprobs: int | None = None          # report each new token's log-prob and this many best (None: off)


@dataclass
class Sequence:
    """A request's life in a slot. The cache holds ids[window_start : window_start + in_cache].

    While `decoding`, the last id is the one the next decode step feeds; before, the ids past
    the cache are a prompt (or a slid window) waiting to be prefilled.
    """

    request: Request
    ids: list[int]
    generated: list[int] = field(default_factory=list)
    window_start: int = 0
    in_cache: int = 0
    decoding: bool = False
    finish_reason: str | None = None     # "stop" | "length" | "context" | "cancelled"
    scored: tuple | None = None          # (log-prob, [(id, log-prob)] best) of the token just sampled

    @property
    def prefilling(self) -> bool:
        return self.finish_reason is None and not self.decoding


@dataclass
class Event:
    """What one step did to one slot: a new token (None when it stopped on a stop id) and/or a finish."""

    slot: int
    token: int | None
    finish_reason: str | None = None
    stop_id: int | None = None          # the stop id that ended it (not part of the output; logprobs report it)
    logprob: tuple | None = None        # with Request.logprobs: (log-prob, [(id, log-prob)] best) of the token


def check_prompt(n_tokens: int, max_len: int) -> None:
    """One sentence for a prompt that is empty or longer than the context."""
    if n_tokens == 0:
        raise UserError("the prompt is empty; give at least one token (an empty text prompt starts from end-of-text)")
    if n_tokens > max_len:
        raise UserError(f"the prompt has {n_tokens} tokens but the model's context is model.block_size={max_len}; "
                        f"shorten the prompt to at most {max_len} tokens")


class SlotBatch:
    """`n_slots` sequences over one ragged cache of `max_len` positions (default block_size)."""

    def __init__(self, model: torch.nn.Module, n_slots: int, max_len: int | None = None,
                 vocab_size: int | None = None, sliding_window: bool = False,
                 cuda_graph: bool = False, compile: bool = False):
        self.model = model
        self.cache = model.make_kv_cache(batch_size=n_slots, max_len=max_len)
        self.max_len = self.cache.max_len
        self.cache.set_lengths(torch.zeros(n_slots, dtype=torch.long))
        self.step = DecodeStep(model, self.cache, cuda_graph=cuda_graph, compile=compile, vocab_size=vocab_size)
        self.sampler = RowSampler(n_slots, self.cache.lengths.device, vocab_size)
        self.sliding_window = sliding_window
        self.seqs: list[Sequence | None] = [None] * n_slots

    def free_slots(self) -> list[int]:
        return [i for i, s in enumerate(self.seqs) if s is None]

    def busy(self) -> bool:
        return any(s is not None for s in self.seqs)

    def admit(self, slot: int, request: Request) -> Sequence:
        """Put `request` into the free `slot`; its prompt is prefilled by the next `prefill` calls."""
        check_prompt(len(request.prompt), self.max_len)
        request.sampling.check()
        seq = Sequence(request, [int(i) for i in request.prompt])
        self.sampler.set_row(slot, request.sampling)
        self._reset_row(slot)
        self.seqs[slot] = seq
        if request.max_new_tokens <= 0:
            seq.finish_reason = "length"
        return seq

    def release(self, slot: int, reason: str | None = None) -> Sequence | None:
        """Free `slot` (e.g. a cancelled request); returns the sequence it held."""
        seq, self.seqs[slot] = self.seqs[slot], None
        if seq is not None and seq.finish_reason is None:
            seq.finish_reason = reason
        self._reset_row(slot)
        return seq

    def _reset_row(self, slot: int) -> None:
        self.cache.lengths[slot] = 0
        self.step.decoding[slot] = False

    def prefill(self, slot: int, budget: int | None = None) -> tuple[int, list[Event]]:
        """Write up to `budget` of one slot's pending tokens into its row; returns (tokens used, events)."""
        chunk = self._pending(slot) if budget is None else min(self._pending(slot), budget)
        return chunk, self._prefill_run([(slot, chunk)])

    def prefill_within(self, budget: int | None = None) -> list[Event]:
        """Prefill pending slots in slot order, at most `budget` tokens in all (None: all of them);
        neighbouring slots go together, in one right-padded forward."""
        events, run = [], []                                # run: (slot, chunk) of neighbouring slots
        for slot in range(len(self.seqs)):
            chunk = self._pending(slot) if budget is None else min(self._pending(slot), budget)
            if run and (chunk == 0 or run[-1][0] != slot - 1 or not self._fits(run + [(slot, chunk)])):
                events += self._prefill_run(run)
                run = []
            if chunk:
                run.append((slot, chunk))
                budget = None if budget is None else budget - chunk
            if budget == 0:
                break
        return events + (self._prefill_run(run) if run else [])

    def prefill_all(self) -> list[Event]:
        """Prefill every slot that has pending tokens, whole (no budget)."""
        return self.prefill_within(None)

    def _pending(self, slot: int) -> int:
        seq = self.seqs[slot]
        return 0 if seq is None or not seq.prefilling else len(seq.ids) - seq.window_start - seq.in_cache

    def _fits(self, run: list[tuple[int, int]]) -> bool:
        # Padding is written too: every row must have room for the widest chunk of the run.
        return max(c for _, c in run) + max(self.seqs[s].in_cache for s, _ in run) <= self.max_len

    def _prefill_run(self, run: list[tuple[int, int]]) -> list[Event]:
        done, tokens = self.prefill_rows(run[0][0], [c for _, c in run])
        events = []
        for slot, token in zip(done, tokens.tolist() if tokens is not None else []):
            events += self._accept(slot, [token])
        return events

    def prefill_rows(self, first: int, chunks: list[int]) -> tuple[list[int], torch.Tensor | None]:
        """Prefill the next `chunks[i]` pending tokens of slot first+i (neighbouring slots) in one
        right-padded forward. Returns the slots whose prompt is now all in, and their next tokens on
        the device (sampled, not yet accepted)."""
        device = self.cache.lengths.device
        seqs = self.seqs[first:first + len(chunks)]
        width = max(chunks)
        ids = []
        for seq, chunk in zip(seqs, chunks):
            start = seq.window_start + seq.in_cache
            ids.append(seq.ids[start:start + chunk] + [0] * (width - chunk))
        view = self.cache.rows(first, first + len(chunks))
        logits = self.model(torch.tensor(ids, device=device), kv_cache=view)
        # The padding's keys past each row's length are overwritten by that row's next tokens.
        view.lengths.copy_(torch.tensor([s.in_cache + c for s, c in zip(seqs, chunks)], device=device))
        done = []
        for i, (seq, chunk) in enumerate(zip(seqs, chunks)):
            seq.in_cache += chunk
            if seq.window_start + seq.in_cache == len(seq.ids):
                done.append(i)
        if not done:
            return [], None
        last = logits[torch.tensor(done, device=device), torch.tensor([chunks[i] - 1 for i in done], device=device)]
        slots = [first + i for i in done]
        tokens = self.sampler.sample(last, slots)
        self._score(last, tokens, slots)
        index = torch.tensor(slots, device=device)
        self.step.tokens[index, 0] = tokens
        for slot in slots:
            seq = self.seqs[slot]
            seq.decoding = seq.finish_reason is None      # admitted with nothing to make: never decodes
            self.step.decoding[slot] = seq.decoding
        return slots, tokens

    def prefill_together(self, max_tokens: int = 8192) -> torch.Tensor:
        """Prefill every slot at once (all just admitted), in groups of at most `max_tokens` padded
        tokens. Returns each slot's first token [n_slots] on the device, not yet accepted
        (`decode_to_end` reads it back with the rest)."""
        lengths = [len(s.ids) for s in self.seqs]
        group = max(1, max_tokens // max(lengths))
        firsts = [self.prefill_rows(start, lengths[start:start + group])[1]
                  for start in range(0, len(self.seqs), group)]
        return torch.cat(firsts)

    def decode_to_end(self, first: torch.Tensor) -> None:
        """Decode every slot to its end with no host sync per step, then read all tokens back at once.

        Where a row ends by count (its budget, or the context) is known in advance, so the host
        stops it at the right step without looking at its tokens; stop ids are applied afterwards
        (a row that stopped early computed a few tokens for nothing). Not with sliding_window,
        whose recomputation needs the tokens.
        """
        needs = [0 if s.finish_reason else min(s.request.max_new_tokens, self.max_len - len(s.ids) + 1)
                 for s in self.seqs]
        produced, active = [first], {i for i, n in enumerate(needs) if n > 0}
        for step in range(1, max(needs, default=0)):
            for slot in [i for i in active if needs[i] <= step]:
                self._reset_row(slot)                      # made its last token: stop it (a device write)
                active.discard(slot)
            logits = self.step()                           # greedy rows' next inputs are in place
            if self.sampler.greedy(sorted(active)):
                tokens = self.step.tokens[:, 0].clone()
            else:
                tokens = self.sampler.sample(logits)
                self.step.tokens[:, 0] = tokens
            produced.append(tokens)
        table = torch.stack(produced, dim=1).tolist()      # the one host sync
        for slot, seq in enumerate(self.seqs):
            for token in table[slot][:needs[slot]]:
                self._accept(slot, [token])
                if self.seqs[slot] is None:
                    break
                seq.in_cache += 1                          # the token was fed by the next step
            self.release(slot)

    def decode(self) -> list[Event]:
        """One token for every decoding slot, in one forward over all slots."""
        events = self._retire()
        rows = [i for i, s in enumerate(self.seqs) if s is not None and s.decoding and s.finish_reason is None]
        if not rows:
            return events
        logits = self.step()
        if self.sampler.greedy(rows):                      # the step put their argmax in place
            every = len(rows) == len(self.seqs)
            tokens = self.step.tokens[:, 0] if every else self.step.tokens[rows, 0]
            self._score(logits if every else logits[torch.tensor(rows, device=logits.device)], tokens, rows)
        elif len(rows) == len(self.seqs):                  # every slot decodes: no gather, no scatter
            tokens = self.sampler.sample(logits, rows)
            self.step.tokens[:, 0] = tokens
            self._score(logits, tokens, rows)
        else:
            index = torch.tensor(rows, device=logits.device)
            tokens = self.sampler.sample(logits[index], rows)
            self.step.tokens[index, 0] = tokens
            self._score(logits[index], tokens, rows)
        for slot in rows:
            self.seqs[slot].in_cache += 1
        for slot, token in zip(rows, tokens.tolist()):     # the one host sync per step
            events += self._accept(slot, [token])
        return events

    def accept_verified(self, slot: int, tokens: list[int], fed: int) -> list[Event]:
        """The tokens a speculative round kept for `slot` (`slot_speculation.py`): its row keeps the `fed`
        positions the round verified (the last token and the kept drafts); the last token is fed next."""
        seq = self.seqs[slot]
        seq.in_cache += fed
        self.cache.lengths[slot] = seq.in_cache          # rolls back the keys of the rejected drafts
        self.step.tokens[slot, 0] = tokens[-1]
        return self._accept(slot, tokens)

    def _score(self, logits: torch.Tensor, tokens: torch.Tensor, slots: list[int]) -> None:
        """For the slots among `slots` whose request asks for log-probs: the just sampled token's log-prob
        under the model's own distribution (not the sampling filters'), and the best alternatives."""
        want = [i for i, slot in enumerate(slots) if self.seqs[slot].request.logprobs is not None]
        if not want:
            return
        index = torch.tensor(want, device=logits.device)
        # Normalised over the model's whole output, as a plain forward scores it (`eval/scoring.py`); the
        # best alternatives come from the tokenizer's ids only (rows past it are padding, never text).
        logp = logits[index].float().log_softmax(dim=-1)
        chosen = logp.gather(1, tokens[index][:, None])[:, 0].tolist()
        logp = logp[:, : self.sampler.vocab_size]
        for row, i in enumerate(want):
            seq = self.seqs[slots[i]]
            best = logp[row].topk(seq.request.logprobs) if seq.request.logprobs else None
            seq.scored = (chosen[row], list(zip(best.indices.tolist(), best.values.tolist())) if best else [])

    def _accept(self, slot: int, tokens: list[int]) -> list[Event]:
        """Record the slot's new tokens in order, stopping at the first finish; release finished slots."""
        seq, events = self.seqs[slot], []
        scored, seq.scored = seq.scored, None          # belongs to the first token (one is sampled at a time)
        for token in tokens:
            reason = self._finish_reason(seq, token)
            if reason == "stop":
                events.append(Event(slot, None, reason, stop_id=token, logprob=scored))
                break
            seq.ids.append(token)
            seq.generated.append(token)
            events.append(Event(slot, token, reason, logprob=scored))
            scored = None
            if reason is not None:
                break
        if events and events[-1].finish_reason is not None:
            self.release(slot, events[-1].finish_reason)
            seq.finish_reason = events[-1].finish_reason
        elif seq.in_cache >= self.max_len:
            self._slide(slot)
        return events

    def _finish_reason(self, seq: Sequence, token: int) -> str | None:
        if token in seq.request.stop_ids:
            return "stop"
        if len(seq.generated) + 1 >= seq.request.max_new_tokens:
            return "length"
        if seq.in_cache >= self.max_len and not self.sliding_window:
            return "context"       # the new token would need position max_len, which the model lacks
        return None

    def _slide(self, slot: int) -> None:
        """Recompute the slot's cache from the last 3/4 of its context, at positions 0.., and go on."""
        seq = self.seqs[slot]
        seq.window_start = len(seq.ids) - max(1, self.max_len * 3 // 4)
        seq.in_cache, seq.decoding = 0, False
        self._reset_row(slot)

    def _retire(self) -> list[Event]:
        # Sequences admitted with nothing to generate finish without a step.
        events = []
        for slot, seq in enumerate(self.seqs):
            if seq is not None and seq.finish_reason is not None:
                self.release(slot)
                events.append(Event(slot, None, seq.finish_reason))
        return events
