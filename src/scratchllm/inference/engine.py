"""The inference engine: generate token ids for one prompt (streamed) or many (batched).

Every caller — the CLI, evaluation, serving, RL rollouts, the playground — goes through here
(or through `scheduler.py`, for requests that come and go). The engine knows token ids only;
`generate_text` / `generate_texts` are the thin text layer on top.

    generate(model, ids, max_new_tokens, temperature, top_k, top_p, stop_ids, seed)  → TokenStream
    generate_batch(model, [Request, ...])        → [Sequence] (.generated, .finish_reason), input order
    generate_text(model, tokenizer, prompt, ...) → TextStream (pieces of text as they are certain)
    generate_texts(model, tokenizer, [prompt], [settings]) → [{"prompt", "text", "tokens", "finish_reason"}]

How it works (`slots.py`): every sequence has a row (a slot) of one preallocated KV cache;
prompts are prefilled (a batch: all at once, right-padded; a stream: its one row), then all
rows decode together, one token a step (a batch reads its tokens back once, at the end), each with
its own length, positions, sampling settings and seeded generator, so a row's output never
depends on what else is in the batch. A row ends with `finish_reason` "stop" (a stop id or stop
string; not part of the output), "length" (max_new_tokens) or "context" (the context is full:
the prediction made from the full context is the last token). `sliding_window=True` instead
recomputes the cache from the last 3/4 of the context and goes on. On CUDA, `cuda_graph=True`
replays the decode step as a CUDA graph (`decode_step.py`) and `compile=True` fuses it first.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> stream = generate(model, [1, 2, 3], max_new_tokens=5, temperature=0)
>>> len(list(stream)), stream.finish_reason
(5, 'length')
>>> seqs = generate_batch(model, [Request([1, 2], 3, SamplingParams(temperature=0)), Request([4], 40)])
>>> [(len(s.generated), s.finish_reason) for s in seqs]
[(3, 'length'), (32, 'context')]
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch

from scratchllm.inference.sampling import SamplingParams
from scratchllm.inference.slots import Request, Sequence, SlotBatch, check_prompt
from scratchllm.inference.text import TextDecoder, encode_prompt

__all__ = ["Request", "SamplingParams", "Sequence", "TokenStream", "TextStream", "encode_prompt",
           "generate", "generate_batch", "generate_text", "generate_texts"]


def _cache_len(model, requests: list[Request], sliding_window: bool) -> int:
    """Positions the cache needs: the longest row's prompt + budget - 1 (the last token is never fed),
    rounded up to a multiple of 64 so the attention kernels get aligned rows."""
    block_size = model.config.block_size
    if sliding_window:
        return block_size
    need = max(max(len(r.prompt), len(r.prompt) + r.max_new_tokens - 1) for r in requests)
    return min(block_size, -(-need // 64) * 64)


class TokenStream:
    """The tokens of one generation as they come; `finish_reason` is set once it is exhausted."""

    def __init__(self, model, request: Request, vocab_size=None, sliding_window=False, cuda_graph=False):
        check_prompt(len(request.prompt), model.config.block_size)
        request.sampling.check()
        self.request, self.finish_reason = request, None
        self._events = self._run(model, vocab_size, sliding_window, cuda_graph)

    def _run(self, model, vocab_size, sliding_window, cuda_graph) -> Iterator[int]:
        with torch.inference_mode():
            slots = SlotBatch(model, 1, _cache_len(model, [self.request], sliding_window), vocab_size,
                              sliding_window, cuda_graph)
            seq = slots.admit(0, self.request)
        while slots.busy():
            with torch.inference_mode():
                events = slots.prefill_all() + slots.decode()
            for event in events:
                if event.token is not None:
                    yield event.token
        self.finish_reason = seq.finish_reason

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> int:
        return next(self._events)

    def close(self, reason: str = "stop") -> None:
        """End the generation early (e.g. the text layer saw a stop string)."""
        self._events.close()
        self.finish_reason = self.finish_reason or reason


def generate(model: torch.nn.Module, prompt_ids: Iterable[int], max_new_tokens: int = 100,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             stop_ids: Iterable[int] = (), seed: int | None = None, vocab_size: int | None = None,
             sliding_window: bool = False, cuda_graph: bool = False) -> TokenStream:
    """Up to `max_new_tokens` sampled token ids continuing `prompt_ids`, streamed.

    `vocab_size` (the tokenizer's) masks the padding rows of a model whose embedding table is
    larger than the vocabulary, so they are never sampled. The model should be in eval mode.
    """
    request = Request([int(i) for i in prompt_ids], max_new_tokens,
                      SamplingParams(temperature, top_k, top_p, seed), tuple(int(i) for i in stop_ids))
    return TokenStream(model, request, vocab_size, sliding_window, cuda_graph)


@torch.inference_mode()
def generate_batch(model: torch.nn.Module, requests: list[Request], vocab_size: int | None = None,
                   sliding_window: bool = False, cuda_graph: bool = False, compile: bool = False) -> list[Sequence]:
    """Generate every request in one batch; returns their sequences in input order."""
    if not requests:
        return []
    slots = SlotBatch(model, len(requests), _cache_len(model, requests, sliding_window), vocab_size,
                      sliding_window, cuda_graph, compile)
    seqs = [slots.admit(i, r) for i, r in enumerate(requests)]
    if not sliding_window:
        slots.decode_to_end(slots.prefill_together())       # one sync for the whole batch
    while slots.busy():                                      # sliding: the recomputation needs the tokens
        slots.prefill_all()
        slots.decode()
    return seqs


class TextStream:
    """The continuation of a prompt as text pieces, as soon as they are certain; then `finish_reason`."""

    def __init__(self, tokens: TokenStream, decoder: TextDecoder):
        self.tokens, self.decoder = tokens, decoder
        self._pieces = self._run()

    @property
    def finish_reason(self) -> str | None:
        return self.tokens.finish_reason

    def _run(self) -> Iterator[str]:
        for token in self.tokens:
            piece = self.decoder.feed(token)
            if piece:
                yield piece
            if self.decoder.stopped:
                self.tokens.close("stop")
                return
        rest = self.decoder.finish()
        if rest:
            yield rest

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        return next(self._pieces)


def generate_text(model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int = 200,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  stop: Iterable[str] = (), seed: int | None = None, sliding_window: bool = False,
                  cuda_graph: bool = False) -> TextStream:
    """Stream the continuation of `prompt` as text; stops on end-of-text or a stop string (not shown)."""
    eot = [tokenizer.eot_id] if tokenizer.eot_id is not None else []
    tokens = generate(model, encode_prompt(tokenizer, prompt), max_new_tokens, temperature, top_k, top_p,
                      stop_ids=eot, seed=seed, vocab_size=tokenizer.vocab_size,
                      sliding_window=sliding_window, cuda_graph=cuda_graph)
    return TextStream(tokens, TextDecoder(tokenizer, stop))


@torch.inference_mode()
def generate_texts(model: torch.nn.Module, tokenizer, prompts: list[str], settings: list[dict],
                   sliding_window: bool = False, cuda_graph: bool = False) -> list[dict]:
    """Continue every prompt in one batch. `settings[i]`: max_new_tokens, temperature, top_k, top_p,
    seed, stop (a list of strings). Returns {"prompt", "text", "tokens", "finish_reason"} per prompt."""
    eot = (tokenizer.eot_id,) if tokenizer.eot_id is not None else ()
    requests = [Request(encode_prompt(tokenizer, p), s.get("max_new_tokens", 200),
                        SamplingParams(s.get("temperature", 1.0), s.get("top_k"), s.get("top_p"), s.get("seed")),
                        eot) for p, s in zip(prompts, settings)]
    decoders = [TextDecoder(tokenizer, s.get("stop", ())) for s in settings]
    texts = [""] * len(prompts)
    slots = SlotBatch(model, len(requests), _cache_len(model, requests, sliding_window), tokenizer.vocab_size,
                      sliding_window, cuda_graph)
    seqs = [slots.admit(i, r) for i, r in enumerate(requests)]
    while slots.busy():
        for event in slots.prefill_all() + slots.decode():
            if event.token is None:
                continue
            texts[event.slot] += decoders[event.slot].feed(event.token)
            if decoders[event.slot].stopped and event.finish_reason is None:
                slots.release(event.slot, "stop")
    return [{"prompt": p, "text": t + d.finish(), "tokens": len(s.generated), "finish_reason": s.finish_reason}
            for p, t, d, s in zip(prompts, texts, decoders, seqs)]
