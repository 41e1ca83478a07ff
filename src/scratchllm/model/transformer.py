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
>>> logits, hidden = model(idx, return_hidden=True)      # embeddings + one stream per block
>>> len(hidden), hidden[-1].shape
(3, torch.Size([2, 10, 32]))
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

    def forward(self, x, rope=None, cache=None, need_weights=False, mask=None):
        a, weights = self.attn(self.attn_norm(x), rope, cache, need_weights, mask)
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
        # recompute activations in backward: False = never, True (= 1) every block, k: blocks 0, k, 2k, ...
        self.gradient_checkpointing: bool | int = False
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

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None, *,
                positions: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                return_hidden: bool = False, return_attention: bool = False):
        """idx [B, T] → logits [B, T, vocab]; with extras, a tuple (logits, hidden?, attention?).

        - `kv_cache`: the T tokens continue each row's cached sequence (their keys/values are
          appended and the cache advances by T); positions then start at each row's length.
        - `positions` [B, T]: each token's position (RoPE angle or learned/sinusoidal row), for
          left-padded rows or packed documents whose positions restart. The caller keeps them
          below block_size.
        - `attn_mask` (bool, True = may attend): [B, S] over the keys (padding) or [B, T, S] (e.g.
          block-diagonal for packed documents), S = keys attended (cached + new). It narrows the
          causal mask; it never widens it, and a token always sees itself.
        - `return_hidden`: the n_layer+1 residual streams [B, T, d] (embeddings, then after each
          block, before the final norm): logit lens, reward and value heads.
        - `return_attention`: each layer's attention weights [B, H, T, S] (the reference path).
        """
        B, T = idx.shape
        cfg = self.config
        ragged = kv_cache is not None and not kv_cache.uniform
        start = kv_cache.pos if kv_cache is not None and not ragged else 0
        if positions is None and not ragged and start + T > cfg.block_size:
            raise UserError(f"the input has {start + T} tokens but the model's context is "
                            f"model.block_size={cfg.block_size}; shorten the prompt (or keep "
                            f"only its last tokens) or use a model with a larger block_size")
        if kv_cache is not None:
            kv_cache.check_room(T)
        slots = kv_cache.write_index(T)[1] if ragged else None  # row b writes at lengths[b] .. (every layer)
        if positions is None:
            positions = slots                                   # ... which are its positions, unless told
        mask = self._attention_mask(T, start, kv_cache, slots, attn_mask)
        x = self.tok_emb(idx)
        if self.config.position in ("learned", "sinusoidal"):
            x = x + self._position_embedding(positions, start, T, idx.device)
        x = self.drop(x)
        rope = self._rope(positions, start, T)
        hidden, weights = [x], []
        recompute = self.gradient_checkpointing and self.training and kv_cache is None and not return_attention
        every = int(self.gradient_checkpointing) or 1
        for i, block in enumerate(self.blocks):
            if recompute and i % every == 0:
                x, _ = checkpoint(block, x, rope, None, False, mask, use_reentrant=False)
            else:
                x, w = block(x, rope, kv_cache, return_attention, mask)
                weights.append(w)
            hidden.append(x)
        if kv_cache is not None:
            kv_cache.advance(T)
        logits = self.lm_head(self.norm_f(x))
        if cfg.logit_softcap:
            cap = cfg.logit_softcap
            logits = cap * torch.tanh(logits / cap)   # bounded logits, smooth near zero
        extras = ([hidden] if return_hidden else []) + ([weights] if return_attention else [])
        return (logits, *extras) if extras else logits

    def _position_embedding(self, positions, start: int, T: int, device) -> torch.Tensor:
        """Learned or sinusoidal rows [T, d] or [B, T, d] for the tokens' positions."""
        if positions is None:
            positions = torch.arange(start, start + T, device=device)
        return self.pos_emb(positions) if self.config.position == "learned" else self.pos_table[positions]

    def _rope(self, positions, start: int, T: int):
        """cos/sin for the tokens' positions: [T, hd] when rows agree, [B, 1, T, hd] per row."""
        if self.config.position != "rope":
            return None
        if positions is None:
            return self.rope_cos[start:start + T], self.rope_sin[start:start + T]
        return self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]

    @staticmethod
    def _attention_mask(T: int, start: int, kv_cache, query_slots, attn_mask):
        """None for plain causal attention (the fused kernel's fast path), else bool [B, 1, T, S].

        Keys are cache slots 0..S-1. Query i may see slot j if j is at or before its own slot (causal)
        and `attn_mask` allows it; its own slot is always allowed, so a padding row never softmaxes
        over nothing (which gives NaN, and NaN leaks through the next matmul even at weight 0).
        """
        if query_slots is None and attn_mask is None:
            return None
        if query_slots is None:                                   # uniform: query i sits at start+i
            device = attn_mask.device
            query_slots = torch.arange(start, start + T, device=device)[None, :]
            n_key = start + T
        else:
            device = query_slots.device
            n_key = kv_cache.max_len
        keys = torch.arange(n_key, device=device)
        mask = keys[None, None, :] <= query_slots[:, :, None]      # [B or 1, T, S]
        if attn_mask is not None:
            allowed = attn_mask.to(torch.bool)
            mask = mask & (allowed[:, None, :] if allowed.dim() == 2 else allowed)
        mask = mask | (keys[None, None, :] == query_slots[:, :, None])
        return mask[:, None]

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

    def matmul_params(self) -> int:
        """Weights used in a matmul per token: N of the 6N FLOPs rule (lm_head counted even when tied)."""
        n = self.num_params(exclude_embeddings=True)
        if self.config.tie_embeddings:
            n += self.lm_head.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token at context `seq_len` (default block_size): 6N + 12·L·H·hd·T."""
        return flops_per_token(self.config, self.matmul_params(), seq_len or self.config.block_size)
