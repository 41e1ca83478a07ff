"""AdamW with two parameter groups: weight decay on matrices, none on biases, norms and gains.

Decay pulls weights toward zero, which regularises the big matrices (linear layers and
embeddings: every parameter with two or more dimensions) but only hurts vectors: a norm's
gain pulled toward zero, or a bias, shrinks the signal instead of the model's capacity.
On CUDA the fused kernel updates all parameters in one launch.

>>> import torch
>>> from scratchllm.train.config import TrainConfig
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
>>> opt = make_optimizer(net, TrainConfig(weight_decay=0.1))
>>> [(len(g["params"]), g["weight_decay"]) for g in opt.param_groups]
[(1, 0.1), (3, 0.0)]
"""

from __future__ import annotations

import torch

from scratchllm.train.adamw8bit import AdamW8bit
from scratchllm.train.config import TrainConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into decayed (>= 2-D) and not decayed (< 2-D) groups."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device_type: str = "cpu") -> torch.optim.Optimizer:
    """AdamW over `param_groups`, lr set to max_lr (the loop sets each step's lr from the schedule).

    `train.optimizer=adamw8bit`: the same update with 8-bit moments (about a quarter of the state).
    """
    if cfg.optimizer == "adamw8bit":
        return AdamW8bit(param_groups(model, cfg.weight_decay), lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.max_lr,
                             betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=device_type == "cuda")
