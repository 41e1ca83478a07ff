"""The model's shape, as one dataclass. GPT-2 and Llama are two settings of the same fields.

>>> cfg = ModelConfig(n_layer=2, n_head=4, n_embd=64, vocab_size=256, block_size=32)
>>> cfg.head_dim, cfg.kv_heads, cfg.hidden_dim
(16, 4, 256)
>>> llama = ModelConfig(norm="rmsnorm", position="rope", mlp="swiglu", n_head=8, n_kv_head=2,
...                     n_embd=512, bias=False, tie_embeddings=False)
>>> llama.kv_heads, llama.hidden_dim
(2, 1536)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from scratchllm.errors import UserError


@dataclass
class ModelConfig:
    vocab_size: int = 50304      # rows of the embedding table (may exceed the tokenizer's vocab: padding for speed)
    block_size: int = 1024       # longest context the model is built for
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None  # None = n_head (MHA); 1 = MQA; between = GQA
    n_embd: int = 768
    mlp_hidden: int | None = None  # None = 4*n_embd (gelu/relu2) or 8/3*n_embd rounded up to mlp_multiple_of (swiglu)
    mlp_multiple_of: int = 256
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = 1e-5
    position: Literal["learned", "sinusoidal", "rope", "none"] = "learned"
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # e.g. Llama 3: {"type": "llama3", "factor": 8.0, ...}
    mlp: Literal["gelu", "swiglu", "relu2"] = "gelu"
    qk_norm: bool = False
    bias: bool = True            # biases in linear layers and LayerNorm
    qkv_bias: bool | None = None  # None = follow `bias`; Qwen2 has q/k/v biases but no others
    dropout: float = 0.0
    tie_embeddings: bool = True
    init_std: float = 0.02       # GPT-2 init; output projections are scaled by 1/sqrt(2*n_layer)
    logit_softcap: float | None = None  # tanh soft-capping of the final logits (Gemma 2 / modded-nanogpt)
    zero_init_proj: bool = False  # attn.o and mlp.down start at zero: every block starts as the identity (modded-nanogpt)
    value_embeds: int = 0        # N token-embedding tables mixed into v of the first N and last N layers (modded-nanogpt)
    depth: int = 0               # >0: one size dial: n_layer=depth, n_embd=64·depth, heads of 64 (see sized)

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden_dim(self) -> int:
        if self.mlp_hidden:
            return self.mlp_hidden
        if self.mlp == "swiglu":
            # SwiGLU has three matrices; 2/3 of 4*d keeps the parameter count of a 4*d GELU MLP.
            hidden = int(8 * self.n_embd / 3)
            m = self.mlp_multiple_of
            return m * ((hidden + m - 1) // m)
        return 4 * self.n_embd

    @property
    def use_qkv_bias(self) -> bool:
        return self.bias if self.qkv_bias is None else self.qkv_bias

    def value_embed_of(self, layer: int) -> int | None:
        """Which value-embedding table layer `layer` mixes into its values, if any.

        modded-nanogpt's U shape: table i feeds layer i and layer n_layer-N+i, so the first and the
        last layers see the token's identity directly in their values.

        >>> [ModelConfig(n_layer=5, value_embeds=2).value_embed_of(i) for i in range(5)]
        [0, 1, None, 0, 1]
        """
        n = self.value_embeds
        if layer < n:
            return layer
        if layer >= self.n_layer - n:
            return layer - (self.n_layer - n)
        return None

    def sized(self) -> "ModelConfig":
        """The shape the `depth` dial sets (nanochat's rule): depth layers, width 64·depth, heads of 64.

        A fixed aspect ratio (width/depth = 64) and head size leave one number to sweep; every other
        field (norms, positions, vocabulary, context) stays as configured.

        >>> s = ModelConfig(depth=6).sized()
        >>> s.n_layer, s.n_embd, s.n_head
        (6, 384, 6)
        """
        if self.depth <= 0:
            return self
        width = 64 * self.depth
        heads = width // 64
        kv = self.n_kv_head and max(1, heads * self.n_kv_head // self.n_head)  # keep the GQA ratio
        return replace(self, n_layer=self.depth, n_embd=width, n_head=heads, n_kv_head=kv)

    def validate(self) -> None:
        if self.depth < 0:
            raise UserError(f"model.depth must be >= 0 (0 = size set by n_layer/n_embd/n_head), got {self.depth}")
        if self.n_embd % self.n_head:
            raise UserError(f"model.n_embd={self.n_embd} is not divisible by model.n_head={self.n_head}; change one of them")
        if self.n_head % self.kv_heads:
            raise UserError(f"model.n_head={self.n_head} is not divisible by model.n_kv_head={self.kv_heads}; pick a divisor")
        if self.position == "rope" and self.head_dim % 2:
            raise UserError(f"RoPE needs an even head dimension, got {self.head_dim}; change model.n_embd or model.n_head")
        if not 0 <= 2 * self.value_embeds <= self.n_layer:
            raise UserError(f"model.value_embeds={self.value_embeds} needs 0 <= 2*value_embeds <= model.n_layer="
                            f"{self.n_layer} (each table feeds one early and one late layer); lower it")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise UserError(f"model.{name} must be positive, got {getattr(self, name)}")
