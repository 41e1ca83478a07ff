"""Tiny models and the no-cache oracle shared by the engine's tests."""

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer

STYLES = {
    "gpt2": dict(),
    "llama": dict(norm="rmsnorm", position="rope", mlp="swiglu", n_kv_head=2, bias=False, tie_embeddings=False),
}


def tiny(style: str = "gpt2", seed: int = 0, **kw) -> Transformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{**dict(n_layer=2, n_head=4, n_embd=32, vocab_size=61, block_size=32), **STYLES[style], **kw})
    return Transformer(cfg).eval()


def greedy_by_recomputation(model, prompt, n, window: int | None = None, keep: int | None = None):
    """The oracle: the whole sequence through the model for every new token, no cache.

    With `window` (the context) and `keep`: once the sequence outgrows the window, continue from
    its last `keep` tokens, as a sliding window that recomputes the cache does.
    """
    ids, start = list(prompt), 0
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids[start:]]))[0, -1].argmax()))
            if window is not None and len(ids) - start > window:
                start = len(ids) - keep
    return ids[len(prompt):]


def prompts_of_mixed_lengths(n: int, vocab: int = 61, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (int(torch.randint(1, 12, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]
