"""Causal self-attention, in two interchangeable paths.

`sdpa_attention` calls PyTorch's fused `scaled_dot_product_attention` (FlashAttention on a GPU):
fast, memory-light, but it never materializes the attention weights. `reference_attention`
writes the textbook formula out, softmax(Q Kᵀ / √d + mask) V, and returns the weights too,
for teaching, tests and visualization. The two agree to ~1e-6 in fp32.

Grouped-query attention (GQA) gives several query heads one shared key/value head: with
n_kv_head = n_head it is ordinary multi-head attention, with n_kv_head = 1 multi-query.
Query head h reads key/value head h // (n_head / n_kv_head).

>>> import torch
>>> q = torch.randn(1, 4, 6, 8); k = v = torch.randn(1, 2, 6, 8)   # 4 query heads, 2 kv heads
>>> y, w = reference_attention(q, k, v)
>>> torch.allclose(y, sdpa_attention(q, k, v), atol=1e-5), w.shape
(True, torch.Size([1, 4, 6, 6]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scratchllm.model.config import ModelConfig
from scratchllm.model.kv_cache import KVCache
from scratchllm.model.layers import RMSNorm
from scratchllm.model.position import apply_rope


def causal_mask(n_query: int, n_key: int, start: int, device=None) -> torch.Tensor:
    """[n_query, n_key] bool, True where query i (at absolute position start+i) may see key j."""
    q_pos = torch.arange(start, start + n_query, device=device)[:, None]
    k_pos = torch.arange(n_key, device=device)[None, :]
    return k_pos <= q_pos


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int = 0,
                   dropout_p: float = 0.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Causal attention through the fused kernel. q [B,H,T,hd]; k, v [B,Hkv,S,hd], S = start+T.

    `mask` (bool, True = may attend, broadcastable to [B,H,T,S]) replaces the causal triangle:
    the model builds it when rows differ (padding, packed documents, a ragged KV cache).
    """
    n_query, n_key = q.shape[2], k.shape[2]
    is_causal = False
    if mask is None and start == 0 and n_query == n_key:
        is_causal = True          # training and prefill: the kernel builds the triangle itself
    elif mask is None and n_query > 1:
        # subtle: is_causal aligns the triangle top-left, which is wrong once a cache offsets the
        # queries; chunked prefill after a cache needs the explicit mask. One query sees all keys.
        mask = causal_mask(n_query, n_key, start, q.device)
    gqa = k.shape[1] != q.shape[1]
    if gqa and mask is not None:
        # Only the FlashAttention kernel takes enable_gqa, and it takes no mask: with a mask, copy
        # the kv heads so the memory-efficient kernel can run instead of the O(T·S) math fallback.
        group = q.shape[1] // k.shape[1]
        k, v, gqa = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          is_causal=is_causal, enable_gqa=gqa)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int = 0,
                        dropout: nn.Module | None = None,
                        mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / √d + mask) V, written out. Returns (output, weights [B,H,T,S]).

    The mask is the causal triangle offset by `start`, unless an explicit bool `mask` is given.
    """
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)          # one copy of each kv head per query head it serves
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        mask = causal_mask(q.shape[2], k.shape[2], start, q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    out = (dropout(weights) if dropout is not None else weights) @ v
    return out, weights


class Attention(nn.Module):
    """Multi-head causal self-attention with separate q, k, v, o projections.

    Optional pieces by config: RoPE (rotates q and k), QK-norm (RMSNorm over each head's q and
    k, before RoPE, as in Qwen3/OLMo2), q/k/v biases (`qkv_bias`, as in Qwen2), a value embedding
    (`value_embeds`: v ← λ₀·v + λ₁·table[token], λ learned, as in modded-nanogpt).

    q, k and v stay three `nn.Linear` modules — the checkpoint names, LoRA, quantization, GPTQ's
    hooks and every exporter see them — but while they are plain, unhooked Linear layers and the
    batch is large, `qkv` computes them with one matmul on their concatenated weights (see there).
    """

    fuse_qkv = True   # class default; set False on an instance to time or test the three-matmul path

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        d, qkv_bias = cfg.n_embd, cfg.use_qkv_bias
        self.q = nn.Linear(d, self.n_head * self.head_dim, bias=qkv_bias)
        self.k = nn.Linear(d, self.n_kv_head * self.head_dim, bias=qkv_bias)
        self.v = nn.Linear(d, self.n_kv_head * self.head_dim, bias=qkv_bias)
        self.o = nn.Linear(self.n_head * self.head_dim, d, bias=cfg.bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, cfg.norm_eps)
            self.k_norm = RMSNorm(self.head_dim, cfg.norm_eps)
        self.qk_norm = cfg.qk_norm
        if cfg.value_embed_of(layer) is not None:
            self.ve_mix = nn.Parameter(torch.full((2,), 0.5))   # (λ₀, λ₁), reset in Transformer.reset_parameters
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The q, k, v projections of x [B,T,d]: one matmul when that is cheaper, else three.

        One F.linear over [Wq; Wk; Wv] reads x once instead of three times and launches one kernel
        (one in backward too, where x's gradient is a single matmul). The price is the cat, which
        reads and writes the 3·d² weights again on every call: it pays when the tokens in the batch
        N exceed 3·d (x's saved reads, 2·N·d, beat the cat's 6·d²) — training and long prefill, not
        decode. A fused copy kept between calls would skip the cat, but goes stale the moment an
        optimizer step or a weight load changes q, k or v, so it is rebuilt every call instead.
        Equal to the three-matmul path up to fp32 rounding (~1e-6 relative; tests/model/test_fused_qkv.py).
        """
        q, k, v = self.q, self.k, self.v
        plain = all(type(m) is nn.Linear and not (m._forward_hooks or m._forward_pre_hooks) for m in (q, k, v))
        if not (self.fuse_qkv and plain and x.shape[0] * x.shape[1] > 3 * x.shape[-1]):
            return q(x), k(x), v(x)
        weight = torch.cat([q.weight, k.weight, v.weight])
        bias = torch.cat([q.bias, k.bias, v.bias]) if q.bias is not None else None
        return F.linear(x, weight, bias).split([q.out_features, k.out_features, v.out_features], dim=-1)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, need_weights: bool = False, mask: torch.Tensor | None = None,
                ve: torch.Tensor | None = None):
        """x [B,T,d] → (y [B,T,d], weights [B,H,T,S] or None). With a cache, T new tokens follow it.

        `mask` (bool [B,1,T,S]) comes from the model when rows differ; None means plain causal.
        `ve` [B,T,Hkv·hd]: this layer's value embedding of the tokens (value_embeds), else None.
        """
        B, T, _ = x.shape
        q, k, v = self.qkv(x)
        if ve is not None:
            v = self.ve_mix[0] * v + self.ve_mix[1] * ve.to(v.dtype)  # subtle: under autocast v is bf16, the table fp32
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)     # [B, H, T, hd]
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # [B, Hkv, T, hd]
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        start = 0
        if cache is not None:
            start = cache.pos if cache.uniform else 0   # a ragged cache always comes with a mask
            k, v = cache.update(self.layer, k, v)
            k, v = k.to(q.dtype), v.to(q.dtype)   # a cache kept in fp32 under bf16 autocast
        weights = None
        if need_weights:
            y, weights = reference_attention(q, k, v, start, self.attn_dropout, mask)
        else:
            y = sdpa_attention(q, k, v, start, self.attn_dropout.p if self.training else 0.0, mask)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)
        return self.resid_dropout(self.o(y)), weights
