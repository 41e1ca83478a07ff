"""The run's optimizer: AdamW with two decay groups, or Muon for the hidden matrices plus that AdamW.

Decay pulls weights toward zero, which regularises the big matrices (linear layers and
embeddings: every parameter with two or more dimensions) but only hurts vectors: a norm's
gain pulled toward zero, or a bias, shrinks the signal instead of the model's capacity.
On CUDA the fused kernel updates all parameters in one launch.

`train.optimizer=muon` (train/muon.py) moves the hidden matrices — the 2-D weights inside the
transformer's `blocks` — to Muon at `train.muon_lr` (following the same schedule: its group's
`lr_mult` is muon_lr / max_lr) with `train.muon_momentum`, and no weight decay, as in
modded-nanogpt. Embeddings, the head and every vector stay on AdamW at `train.max_lr`.

>>> import torch
>>> from scratchllm.train.config import TrainConfig
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
>>> opt = make_optimizer(net, TrainConfig(weight_decay=0.1))
>>> [(len(g["params"]), g["weight_decay"]) for g in opt.param_groups]
[(1, 0.1), (3, 0.0)]
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=32, block_size=8))
>>> opt = make_optimizer(model, TrainConfig(optimizer="muon", max_lr=1e-3, muon_lr=0.02))
>>> [(g["muon"], len(g["params"]), g["lr_mult"]) for g in opt.param_groups]
[(True, 12, 20.0), (False, 2, 1.0), (False, 22, 1.0)]
"""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor

from scratchllm.errors import UserError
from scratchllm.train.adamw8bit import AdamW8bit
from scratchllm.train.config import TrainConfig
from scratchllm.train.muon import Muon


def _decay_split(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into decayed (>= 2-D) and not decayed (< 2-D) groups."""
    return _decay_split([p for p in model.parameters() if p.requires_grad], weight_decay)


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The 2-D trainable weights inside a `blocks` list (attention and MLP projections): Muon's share.

    By name, so a wrapped model (a reward model's `body.blocks.0...`) splits the same way; the
    embeddings, the head (even untied) and value-embedding tables live outside the blocks.
    """
    return [p for name, p in model.named_parameters()
            if p.requires_grad and p.dim() == 2 and ".blocks." in f".{name}"]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device_type: str = "cpu") -> torch.optim.Optimizer:
    """AdamW over `param_groups` (or Muon + AdamW, or 8-bit AdamW), lr set to max_lr (the loop sets each step's lr from the schedule)."""
    if cfg.optimizer == "muon":
        return _make_muon(model, cfg)
    if cfg.optimizer == "adamw8bit":   # the same update with 8-bit moments (about a quarter of the state)
        return AdamW8bit(param_groups(model, cfg.weight_decay), lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.max_lr,
                             betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=device_type == "cuda")


def _holds_pieces(model: torch.nn.Module) -> bool:
    """Whether parameters are DTensors (FSDP2 or tp): each rank then holds only a piece of a matrix."""
    return any(isinstance(p, DTensor) for p in model.parameters())


def _make_muon(model: torch.nn.Module, cfg: TrainConfig) -> Muon:
    if _holds_pieces(model):
        raise UserError("train.optimizer=muon needs each whole matrix on every rank, which parallel.dp=fsdp "
                        "and parallel.tp shard; use parallel.dp=ddp (or train.optimizer=adamw with fsdp)")
    hidden = hidden_matrices(model)
    if not hidden:
        raise UserError("train.optimizer=muon found no hidden matrices (2-D weights inside the model's blocks) "
                        "to orthogonalise; use train.optimizer=adamw for this model")
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    muon = {"params": hidden, "muon": True, "lr": cfg.muon_lr, "lr_mult": cfg.muon_lr / cfg.max_lr,
            "momentum": cfg.muon_momentum}
    adam = [{**g, "lr_mult": 1.0} for g in _decay_split(rest, cfg.weight_decay)]
    return Muon([muon, *adam], lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
