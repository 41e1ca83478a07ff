"""The served model: a loaded run, its continuous-batching scheduler, and asyncio streams of tokens.

An HTTP handler runs on the event loop; the model runs on the scheduler's thread
(`inference/scheduler.py`). `ServedModel.submit(...)` bridges the two: it submits a request
with an `on_event` callback that hands each token to an `asyncio.Queue` through
`call_soon_threadsafe`, and cancels the request when the consumer stops early (a client that
went away, a stop string, a timeout), so that its slot is free at the next step. It knows runs,
token ids and text pieces; OpenAI's shapes live in `openai.py`.

>>> import asyncio, torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=257, block_size=32)).eval()
>>> served = ServedModel(model, tok, name="tiny", n_slots=2).start()
>>> async def main():
...     pieces = [p async for p in served.submit([65, 66], 3, SamplingParams(temperature=0))]
...     return len(pieces[-1].tokens), pieces[-1].finish_reason
>>> asyncio.run(main())
(3, 'length')
>>> served.stop()
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

import torch

from scratchllm.inference.sampling import SamplingParams
from scratchllm.inference.scheduler import Scheduler
from scratchllm.inference.slots import Request, check_prompt
from scratchllm.inference.text import TextDecoder
from scratchllm.tokenizer.special import ENDOFTEXT

__all__ = ["Piece", "PieceStream", "SamplingParams", "ServedModel"]


@dataclass
class Piece:
    """What one scheduler event made of a stream: new text (may be ''), the tokens so far, the end."""

    text: str
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None       # OpenAI's: "stop" | "length"; None while going on
    first_token_s: float | None = None     # seconds from submit to the first token
    stop_id: int | None = None             # the stop id it ended on (not in `tokens`)
    # With logprobs asked: (token, log-prob, [(id, log-prob)] best) of each token this piece brought,
    # the stop id's too, as the decode step computed them.
    logprobs: list[tuple] = field(default_factory=list)


class ServedModel:
    """One model behind the API: `stream(ids, ...)` yields Pieces; `prompt_logprobs(ids)` scores a sequence."""

    def __init__(self, model: torch.nn.Module, tokenizer, name: str, n_slots: int = 8, max_queue: int = 64,
                 chat: bool = False, timeout_s: float = 300.0, draft: torch.nn.Module | None = None,
                 draft_k: int = 4):
        self.model, self.tokenizer, self.name, self.chat = model, tokenizer, name, chat
        self.n_slots, self.timeout_s = n_slots, timeout_s
        self.context = model.config.block_size
        # A draft model makes a request that decodes alone speculative (the scheduler's batch of one).
        self.scheduler = Scheduler(model, n_slots=n_slots, max_queue=max_queue, vocab_size=tokenizer.vocab_size,
                                   draft=draft, draft_k=draft_k)
        self.ready = False
        self.created = int(time.time())
        eot = tokenizer.special_tokens.get(ENDOFTEXT)
        self.stop_ids: tuple[int, ...] = (eot,) if eot is not None else ()

    def start(self) -> "ServedModel":
        self.scheduler.start()
        return self

    def stop(self) -> None:
        self.scheduler.stop()

    def check_prompt(self, ids: list[int]) -> None:
        """A UserError naming the context for an empty prompt or one longer than the model's context."""
        check_prompt(len(ids), self.context)

    def warm_up(self) -> None:
        """One short greedy generation through the scheduler: the first forward's one-off costs are paid."""
        handle = self.scheduler.submit(Request([self.stop_ids[0] if self.stop_ids else 0], 2,
                                               SamplingParams(temperature=0)))
        handle.done.wait()
        self.ready = True

    def submit(self, ids: list[int], max_new_tokens: int, sampling: SamplingParams,
               stops: list[str] = (), stop_ids: tuple[int, ...] | None = None,
               logprobs: int | None = None) -> "PieceStream":
        """Queue the continuation of `ids`; iterate the result (`async for`) for its Pieces.
        `logprobs` (a count of best alternatives) makes each Piece carry its tokens' log-probs.

        Raises QueueFull (→ 429) or UserError (→ 400) here, before a response has begun.
        """
        return PieceStream(self, Request(list(ids), max_new_tokens, sampling,
                                         self.stop_ids if stop_ids is None else stop_ids, logprobs), stops)

    @torch.inference_mode()
    def token_logprobs(self, ids: list[int], top: int = 0) -> tuple[list[float | None], list[list[tuple[int, float]]]]:
        """Log-probability of each token of `ids` given those before it (None for the first), and the `top` best.

        A plain forward over the whole sequence (no cache): what a likelihood evaluation asks.
        """
        device = next(self.model.parameters()).device
        logits = self.model(torch.tensor([ids], device=device))[0].float()
        logp = logits[:-1].log_softmax(dim=-1)[:, : self.tokenizer.vocab_size]
        chosen = logp.gather(1, torch.tensor(ids[1:], device=device)[:, None])[:, 0].tolist()
        best = []
        if top:
            values, order = logp.topk(min(top, logp.shape[-1]), dim=-1)
            best = [list(zip(o.tolist(), v.tolist())) for o, v in zip(order, values)]
        return [None, *chosen], [[], *best] if top else []


class PieceStream:
    """One submitted continuation: `async for piece in stream` until a stop id or string, the budget,
    the context or the timeout; leaving the loop early (or `cancel()`) frees the slot."""

    def __init__(self, served: ServedModel, request: Request, stops: list[str]):
        self.served = served
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        self.started = time.perf_counter()
        self.handle = served.scheduler.submit(request, on_event=self._on_event)
        self.decoder = TextDecoder(served.tokenizer, stops)

    def _on_event(self, handle, token, reason) -> None:     # on the scheduler's thread
        self.loop.call_soon_threadsafe(self.events.put_nowait, (token, reason, handle.last_logprob))

    def cancel(self) -> None:
        if not self.handle.done.is_set():
            self.served.scheduler.cancel(self.handle)

    async def __aiter__(self) -> AsyncIterator[Piece]:
        decoder, tokens, first = self.decoder, [], None
        deadline = self.started + self.served.timeout_s
        try:
            while True:
                try:
                    token, reason, scored = await asyncio.wait_for(self.events.get(),
                                                                   max(deadline - time.perf_counter(), 0))
                except asyncio.TimeoutError:
                    # A request past its time ends as if its budget ran out: what came so far is kept.
                    yield Piece(decoder.finish(), tokens, "length", first)
                    return
                text = ""
                if token is not None:
                    first = first if first is not None else time.perf_counter() - self.started
                    tokens.append(token)
                    text = decoder.feed(token)
                scores = [scored] if scored is not None else []
                if decoder.stopped:
                    yield Piece(text, tokens, "stop", first, logprobs=scores)
                    return
                if reason is not None:
                    # "context" (the slot is full) is OpenAI's "length": the output was cut, not ended.
                    yield Piece(text + decoder.finish(), tokens, "stop" if reason == "stop" else "length", first,
                                self.handle.stop_id, scores)
                    return
                yield Piece(text, tokens, None, first, logprobs=scores)
        finally:
            self.cancel()        # a client gone, a stop string, a timeout: the slot is free at the next step
