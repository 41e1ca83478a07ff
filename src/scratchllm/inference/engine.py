"""Generation: prefill the prompt once, then decode one token at a time with the KV cache.

`generate` streams token ids; `generate_text` streams decoded text and stops on end-of-text
or a stop string. Both stop when the context is full (`block_size` positions): a model with
learned positions has nothing to say about position block_size+1, and sliding the window
would mean recomputing the whole cache each step, so we end the generation instead.

Stop tokens and stop strings are not part of the output. A generation that ends with fewer
than `max_new_tokens` tokens and a context that is not full ended on a stop.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> ids = list(generate(model, [1, 2, 3], max_new_tokens=5, temperature=0))
>>> len(ids)
5
"""

from __future__ import annotations

import codecs
from typing import Iterable, Iterator

import torch

from scratchllm.errors import UserError
from scratchllm.inference.sampling import check_sampling_args, make_generator, sample_next


def _check_prompt(n_tokens: int, block_size: int) -> None:
    if n_tokens == 0:
        raise UserError("the prompt is empty; give at least one token (an empty text prompt starts from end-of-text)")
    if n_tokens > block_size:
        raise UserError(f"the prompt has {n_tokens} tokens but the model's context is model.block_size={block_size}; "
                        f"shorten the prompt to at most {block_size} tokens")


@torch.inference_mode()
def generate(model: torch.nn.Module, prompt_ids: Iterable[int], max_new_tokens: int = 100,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             stop_ids: Iterable[int] = (), seed: int | None = None,
             vocab_size: int | None = None) -> Iterator[int]:
    """Yield up to `max_new_tokens` sampled token ids, one at a time, continuing `prompt_ids`.

    `vocab_size` (the tokenizer's) masks the padding rows of a model whose embedding table is
    larger than the vocabulary, so they are never sampled. The model should be in eval mode.
    """
    ids = [int(i) for i in prompt_ids]
    block_size = model.config.block_size
    _check_prompt(len(ids), block_size)
    check_sampling_args(temperature, top_k, top_p)
    if max_new_tokens <= 0:
        return
    stop = set(int(i) for i in stop_ids)
    device = model.tok_emb.weight.device
    generator = make_generator(seed, device)
    # The last sampled token is never fed back, so the cache needs one position less than the total.
    cache = model.make_kv_cache(batch_size=1, max_len=min(block_size, len(ids) + max_new_tokens - 1))
    logits = model(torch.tensor([ids], device=device), kv_cache=cache)[:, -1]   # prefill
    for step in range(max_new_tokens):
        if vocab_size is not None and vocab_size < logits.shape[-1]:
            logits[:, vocab_size:] = float("-inf")
        token = int(sample_next(logits, temperature, top_k, top_p, generator)[0])
        if token in stop:
            return
        yield token
        if step == max_new_tokens - 1 or cache.pos >= block_size:
            return                                                                # budget or context used up
        logits = model(torch.tensor([[token]], device=device), kv_cache=cache)[:, -1]  # decode one step


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Ids of `prompt`; special-token text like <|endoftext|> becomes its id; empty → [eot]."""
    if not prompt:
        if tokenizer.eot_id is None:
            raise UserError("the prompt is empty and the tokenizer has no end-of-text token to start from; give a prompt")
        return [tokenizer.eot_id]
    if tokenizer.special_tokens:
        return tokenizer.encode(prompt, allowed_special="all")
    return tokenizer.encode(prompt)


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that could be the start of a stop string."""
    longest = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:n]):
                longest = n
                break
    return longest


def generate_text(model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int = 200,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  stop: Iterable[str] = (), seed: int | None = None) -> Iterator[str]:
    """Yield the continuation of `prompt` as text pieces, as soon as they are certain.

    A token can end in the middle of a UTF-8 character, so bytes go through an incremental
    decoder that holds back an unfinished character. Text that might be the start of a stop
    string is held back too, until it either completes the stop string (then generation ends
    and the stop string is not shown) or cannot anymore.
    """
    stops = [s for s in stop if s]
    eot = [tokenizer.eot_id] if tokenizer.eot_id is not None else []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    tokens = generate(model, encode_prompt(tokenizer, prompt), max_new_tokens, temperature, top_k, top_p,
                      stop_ids=eot, seed=seed, vocab_size=tokenizer.vocab_size)
    for token in tokens:
        pending += decoder.decode(tokenizer.decode_bytes([token]))
        hits = [i for i in (pending.find(s) for s in stops) if i >= 0]
        if hits:
            tokens.close()
            if min(hits):
                yield pending[:min(hits)]
            return
        ready = len(pending) - _held_back(pending, stops)
        if ready:
            yield pending[:ready]
            pending = pending[ready:]
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
