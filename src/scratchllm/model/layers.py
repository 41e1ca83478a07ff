"""The small layers of a transformer block: normalization and the MLP.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> cfg = ModelConfig(n_embd=64, n_head=4, mlp="swiglu", norm="rmsnorm", bias=False)
>>> x = torch.randn(2, 5, 64)
>>> make_norm(cfg, 64)(x).shape, MLP(cfg)(x).shape
(torch.Size([2, 5, 64]), torch.Size([2, 5, 64]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchllm.model.config import ModelConfig


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight: LayerNorm without centring or bias (Llama)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # subtle: under bf16 autocast q and k arrive in bf16 (QK-norm); a weight of another dtype
        # would send rms_norm to its slow unfused path.
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


def make_norm(cfg: ModelConfig, dim: int) -> nn.Module:
    """The configured normalization over the last `dim` features."""
    if cfg.norm == "rmsnorm":
        return RMSNorm(dim, cfg.norm_eps)
    return nn.LayerNorm(dim, eps=cfg.norm_eps, bias=cfg.bias)


class MLP(nn.Module):
    """The feed-forward half of a block.

    gelu / relu2: down(act(up(x))), with GELU's tanh approximation as in GPT-2 and ReLU² as in
    modded-nanogpt. swiglu: down(silu(gate(x)) * up(x)), as in Llama.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h = cfg.n_embd, cfg.hidden_dim
        self.kind = cfg.mlp
        if cfg.mlp == "swiglu":
            self.gate = nn.Linear(d, h, bias=cfg.bias)
        self.up = nn.Linear(d, h, bias=cfg.bias)
        self.down = nn.Linear(h, d, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            h = F.silu(self.gate(x)) * self.up(x)
        elif self.kind == "relu2":
            h = F.relu(self.up(x)).square()
        else:
            h = F.gelu(self.up(x), approximate="tanh")
        return self.dropout(self.down(h))
