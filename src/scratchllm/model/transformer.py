"""The transformer language model: one class, GPT-2 style or Llama style by config.

    tokens ─► tok_emb (+ pos_emb) ─► blocks × n_layer ─► norm_f ─► lm_head ─► logits
    block:  x = x + attn(norm(x));  x = x + mlp(norm(x))        (pre-norm residual stream)

GPT-2 is LayerNorm + learned positions + GELU + tied embeddings; Llama is RMSNorm + RoPE +
SwiGLU + grouped-query attention + untied output, no biases. See docs/model.md for the table.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> cfg = ModelConfig(n_layer=2, n_head=4, n_embd=32, vocab_size=100, block_size=16)
>>> model = Transformer(cfg)
>>> idx = torch.randint(0, 100, (2, 10))
>>> model(idx).shape
torch.Size([2, 10, 100])
>>> cache = model.make_kv_cache(batch_size=2)
>>> model(idx, kv_cache=cache).shape, cache.pos        # prefill, then one token at a time
(torch.Size([2, 10, 100]), 10)
>>> logits, attn = model(idx, return_attention=True)
>>> len(attn), attn[0].shape
(2, torch.Size([2, 4, 10, 10]))
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from scratchllm.errors import UserError
from scratchllm.model.attention import Attention
from scratchllm.model.config import ModelConfig
from scratchllm.model.flops import flops_per_token
from scratchllm.model.kv_cache import KVCache
from scratchllm.model.layers import MLP, RMSNorm, make_norm
from scratchllm.model.position import rope_tables, sinusoidal_table


class Block(nn.Module):
    """One pre-norm transformer block: attention, then MLP, each added to the residual stream."""

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.attn_norm = make_norm(cfg, cfg.n_embd)
        self.attn = Attention(cfg, layer)
        self.mlp_norm = make_norm(cfg, cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x, rope=None, cache=None, need_weights=False):
        a, weights = self.attn(self.attn_norm(x), rope, cache, need_weights)
        x = x + a
        x = x + self.mlp(self.mlp_norm(x))
        return x, weights


class Transformer(nn.Module):
    """A decoder-only transformer. `model(idx)` maps token ids [B, T] to logits [B, T, vocab_size]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.position == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        elif cfg.position == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.block_size, cfg.n_embd), persistent=False)
        elif cfg.position == "rope":
            cos, sin = rope_tables(cfg.head_dim, cfg.block_size, cfg.rope_theta, cfg.rope_scaling)
            # Computed tables, not weights: non-persistent, so checkpoints hold only what is learned.
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm_f = make_norm(cfg, cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight   # one matrix reads tokens in and writes them out
        self.gradient_checkpointing = False             # recompute each block's activations in backward
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 init: N(0, init_std) weights, zero biases, unit norms; residual outputs scaled down.

        Each block adds two projections (attn.o, mlp.down) to the residual stream; scaling their
        std by 1/sqrt(2·n_layer) keeps the stream's variance from growing with depth.
        """
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, (nn.LayerNorm, RMSNorm)):
                nn.init.ones_(module.weight)
            if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith(("attn.o.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None, return_attention: bool = False):
        """idx [B, T] → logits [B, T, vocab] (or (logits, weights per layer) with return_attention).

        With `kv_cache`, the T tokens continue the cached sequence: positions start at
        `kv_cache.pos`, their keys/values are appended and the counter advances by T.
        """
        B, T = idx.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > self.config.block_size:
            raise UserError(f"the input has {start + T} tokens but the model's context is "
                            f"model.block_size={self.config.block_size}; shorten the prompt (or keep "
                            f"only its last tokens) or use a model with a larger block_size")
        if kv_cache is not None:
            kv_cache.check_room(T)
        x = self.tok_emb(idx)
        if self.config.position == "learned":
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        elif self.config.position == "sinusoidal":
            x = x + self.pos_table[start:start + T]
        rope = None
        if self.config.position == "rope":
            rope = (self.rope_cos[start:start + T], self.rope_sin[start:start + T])
        x = self.drop(x)
        weights = []
        recompute = self.gradient_checkpointing and self.training and kv_cache is None and not return_attention
        for block in self.blocks:
            if recompute:
                x, _ = checkpoint(block, x, rope, use_reentrant=False)
            else:
                x, w = block(x, rope, kv_cache, return_attention)
                weights.append(w)
        if kv_cache is not None:
            kv_cache.advance(T)
        logits = self.lm_head(self.norm_f(x))
        if self.config.logit_softcap:
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)   # bounded logits, smooth near zero
        return (logits, weights) if return_attention else logits

    def make_kv_cache(self, batch_size: int = 1, max_len: int | None = None,
                      device=None, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache for `max_len` positions (default block_size) on the model's device/dtype."""
        cfg = self.config
        weight = self.tok_emb.weight
        return KVCache(cfg.n_layer, batch_size, cfg.kv_heads, min(max_len or cfg.block_size, cfg.block_size),
                       cfg.head_dim, device=device or weight.device, dtype=dtype or weight.dtype)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        """Parameter count (a tied matrix counted once). exclude_embeddings drops tok_emb and pos_emb."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.tok_emb.weight.numel()
            if self.config.position == "learned":
                n -= self.pos_emb.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token at context `seq_len` (default block_size): 6N + 12·L·H·hd·T."""
        cfg = self.config
        # N counts every weight used in a matmul: the lm_head matrix is one even when it is tied.
        n_matmul = self.num_params(exclude_embeddings=True)
        if cfg.tie_embeddings:
            n_matmul += self.lm_head.weight.numel()
        return flops_per_token(cfg, n_matmul, seq_len or cfg.block_size)

