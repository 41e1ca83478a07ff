"""The logit lens (nostalgebraist 2020): read every layer's residual stream as if it were the last.

Each residual stream (the embeddings, then the stream after each block) goes through the model's
own final norm and unembedding, giving a next-token distribution per layer and position. At the
last layer this is exactly the model's output; earlier layers show how the prediction forms.
Knows a model and ids; draws nothing.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> probs = lens_probs(model, [1, 2, 3])
>>> probs.shape                                             # [embeddings + 2 blocks, T, vocab]
torch.Size([3, 3, 50])
>>> torch.allclose(probs[-1], model(torch.tensor([[1, 2, 3]]))[0].softmax(-1), atol=1e-6)
True
"""

from __future__ import annotations

import torch


def read_out(model, stream: torch.Tensor) -> torch.Tensor:
    """Logits of residual stream(s) [..., d] through the final norm, the unembedding and the softcap."""
    logits = model.lm_head(model.norm_f(stream))
    cap = model.config.logit_softcap
    return cap * torch.tanh(logits / cap) if cap else logits


@torch.no_grad()
def lens_probs(model, ids: list[int]) -> torch.Tensor:
    """Next-token probabilities [n_layer + 1, T, vocab] of each layer's residual stream."""
    device = next(model.parameters()).device
    _, hidden = model(torch.tensor([ids], device=device), return_hidden=True)
    return read_out(model, torch.stack([h[0] for h in hidden])).float().softmax(-1).cpu()


def lens_table(probs: torch.Tensor, k: int = 1) -> dict:
    """For each layer and position: the top-k ids and probabilities, and the probability of the
    eventual prediction (the last layer's top token) as that layer sees it."""
    final = probs[-1].argmax(-1)                                        # [T]
    top = probs.topk(k, dim=-1)
    return {"top_ids": top.indices.tolist(), "top_probs": top.values.tolist(),
            "final_ids": final.tolist(),
            "final_prob": probs.gather(-1, final.expand(probs.shape[0], -1)[..., None])[..., 0].tolist()}
