"""What a forward pass shows on request: prompt ids checked for the run, attention weights per layer.

This module knows runs, models and tokenizers; it draws nothing. The model itself returns
attention weights (`return_attention=True`, the reference attention path) and residual streams
(`return_hidden=True`): nothing here patches the model.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> maps = attention_maps(model, [1, 2, 3])
>>> maps.shape, round(float(maps[0, 0, 2].sum()), 5)                  # [layer, head, query, key]
(torch.Size([2, 2, 3, 3]), 1.0)
>>> check_layer_head(model, layer=2, head=0)
Traceback (most recent call last):
...
scratchllm.errors.UserError: --layer 2 is out of range: this model has 2 layers (0 to 1)
"""

from __future__ import annotations

import torch

from scratchllm.errors import UserError
from scratchllm.inference.text import encode_prompt


def prompt_ids(run, prompt: str) -> list[int]:
    """The ids of `prompt` under the run's tokenizer, refused when the run has none or the context is too short."""
    if run.tokenizer is None:
        raise UserError(f"run '{run.run_dir}' has no tokenizer.json, so text cannot be turned into tokens; "
                        "copy the tokenizer the run was trained with into it")
    ids = encode_prompt(run.tokenizer, prompt)
    block_size = run.model.config.block_size
    if len(ids) > block_size:
        raise UserError(f"the prompt has {len(ids)} tokens but the model's context is {block_size}; "
                        "give a shorter prompt")
    return ids


def check_layer_head(model, layer: int | None = None, head: int | None = None) -> None:
    """Raise a UserError naming the valid range when `layer` or `head` is not one of the model's."""
    cfg = model.config
    if layer is not None and not 0 <= layer < cfg.n_layer:
        raise UserError(f"--layer {layer} is out of range: this model has {cfg.n_layer} layers (0 to {cfg.n_layer - 1})")
    if head is not None and not 0 <= head < cfg.n_head:
        raise UserError(f"--head {head} is out of range: this model has {cfg.n_head} heads (0 to {cfg.n_head - 1})")


@torch.no_grad()
def attention_maps(model, ids: list[int]) -> torch.Tensor:
    """Attention weights [n_layer, n_head, T, T] of one sequence (row = query, column = key)."""
    device = next(model.parameters()).device
    _, weights = model(torch.tensor([ids], device=device), return_attention=True)
    return torch.stack([w[0] for w in weights]).float().cpu()


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """One short printable label a token: its text with spaces and newlines made visible."""
    return [tokenizer.decode([i]).replace(" ", "␣").replace("\n", "↵").replace("\t", "→") or "∅" for i in ids]


def vocab_labeller(tokenizer):
    """A function id → printable label, for tables and axes."""
    return lambda i: token_labels(tokenizer, [i])[0]
