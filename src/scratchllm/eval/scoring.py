"""Log-likelihood of continuations under a causal model: the one primitive every scored task uses.

A request is (context ids, continuation ids); its score is the sum of log p(continuation token |
everything before it), plus whether greedy decoding would have produced the continuation. Requests
are batched with right padding: causal attention means the padding after a sequence never
influences the logits at its real positions, so no attention mask is needed.

Like lm-evaluation-harness, an input longer than the context keeps its last `block_size + 1`
tokens (the last one is only predicted, never fed). Rolling perplexity cuts a long text into
disjoint windows of `block_size` predicted tokens, each conditioned on the token before it (the
first on end-of-text): lm-eval's `loglikelihood_rolling` with context_len=1.

This module knows token ids and a model's forward only; text and tokenizers live in `lm.py`.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> [(round(ll, 3) < 0, greedy in (True, False)) for ll, greedy in score(model, [([1, 2], [3, 4]), ([5], [6])])]
[(True, True), (True, True)]
>>> list(rolling_windows(list(range(10)), prefix=0, max_len=4))
[([0], [0, 1, 2, 3]), ([3], [4, 5, 6, 7]), ([5, 6, 7], [8, 9])]
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

Request = tuple[Sequence[int], Sequence[int]]


def _model_input(ctx: Sequence[int], cont: Sequence[int], max_len: int) -> list[int]:
    """The ids fed to the model: context + continuation minus its last token, cut to `max_len` from the left."""
    whole = list(ctx) + list(cont)
    return whole[-(max_len + 1):][:-1]


@torch.inference_mode()
def score(model: torch.nn.Module, requests: Sequence[Request], batch_size: int = 16,
          on_batch: Callable[[int], None] | None = None) -> list[tuple[float, bool]]:
    """(sum of continuation log-probs, is_greedy) for each request, in order.

    Longest requests go first, so a batch holds sequences of similar length (less padding) and an
    out-of-memory error, if any, shows at the first batch. `on_batch(n)` reports progress.
    """
    max_len = model.config.block_size
    device = next(model.parameters()).device
    order = sorted(range(len(requests)), key=lambda i: -(len(requests[i][0]) + len(requests[i][1])))
    out: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        inputs = [_model_input(*requests[i], max_len) for i in chunk]
        width = max(len(x) for x in inputs)
        batch = torch.zeros(len(chunk), width, dtype=torch.long)
        for row, x in enumerate(inputs):
            batch[row, :len(x)] = torch.tensor(x)
        logprobs = F.log_softmax(model(batch.to(device)).float(), dim=-1).cpu()
        for row, i in enumerate(chunk):
            n = len(inputs[row])
            # subtle: a continuation longer than the window is scored on its last n tokens (lm-eval
            # refuses such a request); the window's n positions predict exactly those
            cont = torch.tensor(list(requests[i][1])[-n:], dtype=torch.long)
            lp = logprobs[row, n - len(cont):n]              # the positions that predict the continuation
            ll = lp.gather(-1, cont[:, None]).sum().item()
            out[i] = (ll, bool((lp.argmax(-1) == cont).all()))
        if on_batch:
            on_batch(len(chunk))
    return out


def rolling_windows(ids: Sequence[int], prefix: int, max_len: int) -> Iterator[Request]:
    """Disjoint (context, continuation) windows that together predict every token of `ids` once.

    Each window feeds at most `max_len` tokens: the first predicts ids[:max_len] from `prefix`; each
    later one predicts the next (up to) `max_len` tokens from the tokens before them that still fit
    (one for a full window, more for the shorter last one). This is lm-eval's rolling windows with
    context_len=1 after `make_disjoint_window`, so the sums agree with it token for token.
    """
    ids = list(ids)
    if not ids:
        return
    first = min(max_len, len(ids))
    yield [prefix], ids[:first]
    done = first
    while done < len(ids):
        end = min(len(ids), done + max_len)
        yield ids[end - max_len - 1:done], ids[done:end]
        done = end
