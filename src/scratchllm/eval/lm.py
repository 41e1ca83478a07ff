"""A loaded run as the harness sees it: text in, log-likelihoods and generations out.

Three calls, the same ones `endpoint.EndpointLM` answers for a server:

- `loglikelihood(pairs)`: for each (context, continuation) string pair, the summed log-prob of
  the continuation and whether greedy decoding produces it;
- `loglikelihood_rolling(texts)`: each text's total log-likelihood over disjoint windows;
- `generate(prompts, stop, ...)`: a continuation of each prompt, cut at the first stop string.

Text becomes ids as lm-evaluation-harness does it, so the two agree on every request: trailing
whitespace of a context moves to the front of its continuation, the pair is encoded whole and the
continuation is what follows the context's own ids; an empty context is end-of-text.

Generation goes through `generate_ids`, one small function over the inference engine, so batched
generation can replace it in one place.

>>> import scratchllm                                              # doctest: +SKIP
>>> lm = LocalLM(scratchllm.load("runs/speedrun"))                 # doctest: +SKIP
>>> lm.loglikelihood([("The capital of France is", " Paris")])     # doctest: +SKIP
[(-3.2, True)]
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from scratchllm.errors import UserError
from scratchllm.eval.scoring import rolling_windows, score
from scratchllm.inference.engine import generate

Progress = Callable[[int], None] | None


def generate_ids(model: torch.nn.Module, prompt_ids: list[int], max_new_tokens: int, temperature: float,
                 seed: int | None, vocab_size: int, stop_ids: Sequence[int], until: Callable[[list[int]], bool]):
    """Token ids continuing `prompt_ids`; stops early once `until(ids so far)` is true."""
    out: list[int] = []
    tokens = generate(model, prompt_ids, max_new_tokens, temperature=temperature, seed=seed,
                      stop_ids=stop_ids, vocab_size=vocab_size)
    for token in tokens:
        out.append(token)
        if until(out):
            tokens.close()
            break
    return out


class LocalLM:
    """A run (from `scratchllm.load`) answering the harness's three calls."""

    def __init__(self, run, batch_size: int = 16):
        if run.tokenizer is None:
            raise UserError(f"run '{run.run_dir}' has no tokenizer.json, so text tasks cannot be encoded; "
                            "copy the tokenizer it was trained with into the run directory")
        self.model, self.tokenizer, self.batch_size = run.model, run.tokenizer, batch_size
        self.name = str(run.run_dir)
        self.max_length = self.model.config.block_size
        eot = getattr(self.tokenizer, "eot_id", None)
        self.prefix_id = eot if eot is not None else 0

    def encode(self, text: str) -> list[int]:
        if getattr(self.tokenizer, "special_tokens", None):
            return self.tokenizer.encode(text, allowed_special="all")   # as HF tokenizers match added tokens
        return self.tokenizer.encode(text)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Ids of (context, continuation) the way lm-eval's HFLM cuts them."""
        if not context:   # conditioned on end-of-text, unless the continuation starts with it itself
            cont = self.encode(continuation)
            return ([self.prefix_id], cont) if cont[:1] != [self.prefix_id] else (cont[:1], cont[1:])
        spaces = len(context) - len(context.rstrip())
        if spaces:   # subtle: " Paris" is one token; "is " + "Paris" would be two worse ones
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        n_ctx = len(self.encode(context))
        return whole[:n_ctx], whole[n_ctx:]

    def loglikelihood(self, pairs: Sequence[tuple[str, str]], progress: Progress = None) -> list[tuple[float, bool]]:
        requests = [self.encode_pair(c, x) for c, x in pairs]
        return score(self.model, requests, self.batch_size, progress)

    def loglikelihood_rolling(self, texts: Sequence[str], progress: Progress = None) -> list[float]:
        windows, owner = [], []
        for i, text in enumerate(texts):
            for w in rolling_windows(self.encode(text), self.prefix_id, self.max_length):
                windows.append(w)
                owner.append(i)
        totals = [0.0] * len(texts)
        for i, (ll, _) in zip(owner, score(self.model, windows, self.batch_size, progress)):
            totals[i] += ll
        return totals

    def generate(self, prompts: Sequence[str], stop: Sequence[str], max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0, progress: Progress = None) -> list[str]:
        decode = self.tokenizer.decode
        eot = [self.tokenizer.eot_id] if getattr(self.tokenizer, "eot_id", None) is not None else []
        # a small model's context is shared: at most half for the answer, the rest for the prompt's end
        max_new_tokens = min(max_new_tokens, self.max_length // 2)
        room = self.max_length - max_new_tokens
        outs = []
        for i, prompt in enumerate(prompts):
            ids = self.encode(prompt)[-room:] or [self.prefix_id]   # keep the end: the question is last
            new = generate_ids(self.model, ids, max_new_tokens, temperature, seed + i, self.tokenizer.vocab_size,
                               eot, until=lambda out: any(s in decode(out) for s in stop))
            outs.append(cut_at_stop(decode(new), stop))
            if progress:
                progress(1)
        return outs


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string.

    >>> cut_at_stop("42\\nQuestion: next", ["Question:", "\\n\\n"])
    '42\\n'
    """
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[:min(cuts)] if cuts else text
