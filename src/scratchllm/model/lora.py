"""LoRA (Hu et al. 2021): train a low-rank update B·A beside each frozen weight, W x + s·B A x.

A linear layer W [out, in] keeps its weights; a `LoRALinear` adds A [r, in] (random, Kaiming
uniform as in the paper's code) and B [out, r] (zero, so training starts from exactly the base
model), scaled by s = alpha / r (or alpha / sqrt(r) with rsLoRA, Kalajdzievski 2023, which keeps
the update's size steady as r grows). Only A and B train; `merge_lora` folds s·B·A into W and
gives back plain `nn.Linear` layers, so a merged model costs nothing at inference.

Layers are chosen by the last part of their name (`q k v o` in attention, `up down gate` in the
MLP, `lm_head`), by a regular expression over the full name (`re:blocks\\.[0-3]\\.attn\\.q`), or
`all-linear` (the default: every linear layer of the blocks, PEFT's name for the same).
This module knows layers and tensors only; run directories live in `train/` (finetune.py).

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=8))
>>> idx = torch.randint(0, 50, (1, 8))
>>> before = model(idx)
>>> names = apply_lora(model, LoraConfig(r=4, targets=["q", "v"]))
>>> names
['blocks.0.attn.q', 'blocks.0.attn.v', 'blocks.1.attn.q', 'blocks.1.attn.v']
>>> torch.equal(model(idx), before)            # B = 0: the adapted model starts as the base
True
>>> sum(p.numel() for p in model.parameters() if p.requires_grad)   # 2 layers x (q, v) x (A + B)
512
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from scratchllm.errors import UserError
from scratchllm.model.nf4 import block_linears, quantize_linears

ALL_LINEAR = "all-linear"   # every linear layer of the blocks (not lm_head), as PEFT's "all-linear"
DEFAULT_TARGETS = [ALL_LINEAR]
ADAPTER_CONFIG = "adapter_config.json"   # in a LoRA run directory: the base and these settings


@dataclass
class LoraConfig:
    r: int = 16                 # rank of the update
    alpha: float = 32.0         # scale numerator: s = alpha / r (rsLoRA: alpha / sqrt(r))
    dropout: float = 0.0        # on the adapter's input only (the frozen path sees the clean x)
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    rslora: bool = False

    @property
    def scaling(self) -> float:
        return self.alpha / (math.sqrt(self.r) if self.rslora else self.r)

    def validate(self) -> None:
        if self.r <= 0:
            raise UserError(f"lora.r must be a positive rank, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise UserError("lora.targets is empty; name the layers to adapt, e.g. lora.targets=['q','v']")


class LoRALinear(nn.Module):
    """`base(x) + scaling · B(A(dropout(x)))` around a frozen linear layer (nn.Linear or NF4Linear).

    The rank comes from A's shape, so adapters imported with per-layer ranks (PEFT's
    rank_pattern) fit; the scaling is one number for the whole model.
    """

    def __init__(self, base: nn.Module, r: int, scaling: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        weight = base.weight
        device = weight.device if weight.device.type != "meta" else None
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=device))
        # The init of PEFT and the paper's code: Kaiming-uniform A (a=sqrt(5), nn.Linear's default).
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = scaling
        self.dropout = nn.Dropout(dropout)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """s · B A, the [out, in] matrix the adapter adds to the base weight."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


def _matches(name: str, targets: list[str]) -> bool:
    for t in targets:
        if t == ALL_LINEAR:
            if name.startswith("blocks."):
                return True
        elif t.startswith("re:"):
            if re.fullmatch(t[3:], name):
                return True
        elif name == t or name.endswith("." + t):
            return True
    return False


def _linear_like(module: nn.Module) -> bool:
    return hasattr(module, "in_features") and hasattr(module, "weight") and not isinstance(module, LoRALinear)


def target_names(model: nn.Module, targets: list[str]) -> list[str]:
    """Names of the linear layers `targets` selects; a UserError if one target selects nothing."""
    linears = [n for n, m in model.named_modules() if _linear_like(m)]
    for t in targets:
        if not any(_matches(n, [t]) for n in linears):
            short = sorted({n.rsplit(".", 1)[-1] for n in linears})
            raise UserError(f"LoRA target {t!r} matches no linear layer of this model; use layer names "
                            f"{', '.join(short)} or a regular expression 're:...' over names like {linears[0]!r}")
    return [n for n in linears if _matches(n, targets)]


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def apply_lora(model: nn.Module, cfg: LoraConfig, ranks: dict[str, int] | None = None) -> list[str]:
    """Freeze every parameter of `model` and wrap the targeted layers in `LoRALinear`, in place.

    `ranks` overrides the rank of named layers (imports). Returns the wrapped layers' names.
    """
    cfg.validate()
    names = target_names(model, cfg.targets)
    config = getattr(model, "config", None)
    if "lm_head" in names and getattr(config, "tie_embeddings", False):
        raise UserError("LoRA on lm_head of a model with tied embeddings would also change the input "
                        "embeddings when merged; drop lm_head from lora.targets")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        layer = LoRALinear(model.get_submodule(name), (ranks or {}).get(name, cfg.r), cfg.scaling, cfg.dropout)
        _set_submodule(model, name, layer)
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


@contextlib.contextmanager
def adapters_disabled(model: nn.Module):
    """Run `model` as its base inside the block (every adapter's scaling 0): the frozen reference of
    RL on a LoRA policy, without a second copy of the weights in memory."""
    layers = list(lora_layers(model).values())
    saved = [layer.scaling for layer in layers]
    for layer in layers:
        layer.scaling = 0.0
    try:
        yield model
    finally:
        for layer, scaling in zip(layers, saved):
            layer.scaling = scaling


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors alone, `<layer>.lora_A` / `<layer>.lora_B`: what a LoRA run saves."""
    out = {}
    for name, layer in lora_layers(model).items():
        out[f"{name}.lora_A"] = layer.lora_A.detach()
        out[f"{name}.lora_B"] = layer.lora_B.detach()
    return out


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `adapter_state`-named tensors into an adapted model; every adapter must be present."""
    layers = lora_layers(model)
    want = {f"{n}.lora_{x}" for n in layers for x in "AB"}
    if set(state) != want:
        missing, extra = sorted(want - set(state)), sorted(set(state) - want)
        raise UserError(f"the adapter does not fit this model (missing {missing[:3]}, unexpected {extra[:3]}); "
                        "it was trained with other lora.targets or on another base")
    with torch.no_grad():
        for name, layer in layers.items():
            for part in ("A", "B"):
                src, dst = state[f"{name}.lora_{part}"], getattr(layer, f"lora_{part}")
                if src.shape != dst.shape:
                    raise UserError(f"adapter tensor {name}.lora_{part} has shape {list(src.shape)}, the model "
                                    f"expects {list(dst.shape)}; lora.r or the base differ from training")
                dst.copy_(src)


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its weight and put plain `nn.Linear` layers back, in place; returns `model`.

    A quantized base (NF4Linear) is dequantized first: the merged layer holds full-precision weights.
    """
    for name, layer in lora_layers(model).items():
        base = layer.base
        weight = base.dequantize() if hasattr(base, "dequantize") else base.weight
        merged = nn.Linear(layer.in_features, layer.out_features, bias=base.bias is not None,
                           device=layer.lora_A.device, dtype=layer.lora_A.dtype)
        merged.weight.copy_(weight.to(merged.weight.dtype) + layer.delta_weight())
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        _set_submodule(model, name, merged)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def adapter_spec(cfg: LoraConfig, base: str, quantized: bool = False, ranks: dict[str, int] | None = None) -> dict:
    """What a LoRA run's adapter_config.json holds: the base run, the settings, per-layer ranks."""
    return {"base": base, "quantized": quantized, "r": cfg.r, "alpha": cfg.alpha, "dropout": cfg.dropout,
            "targets": list(cfg.targets), "rslora": cfg.rslora, "ranks": dict(ranks or {})}


def adapt_from_spec(model: nn.Module, spec: dict, state: dict[str, torch.Tensor]) -> nn.Module:
    """The base `model` with the adapters of `spec` (an adapter_spec) holding `state`, in place.

    A quantized spec (QLoRA) stores the blocks' linear layers in NF4 first, as in training.
    """
    if spec.get("quantized"):
        quantize_linears(model, block_linears(model))
    cfg = LoraConfig(r=spec["r"], alpha=spec["alpha"], dropout=spec["dropout"], targets=spec["targets"],
                     rslora=spec["rslora"])
    apply_lora(model, cfg, ranks=spec.get("ranks"))
    load_adapter_state(model, state)
    return model


class AdapterOnly(nn.Module):
    """A training-time view of an adapted model whose checkpoints hold only the adapters.

    The loop saves `state_dict()` and restores with `load_state_dict()`: here they are the
    adapter tensors (megabytes, not the base's gigabytes). `checkpoint_kind` tells the
    checkpoint which loader opens it ("lora": the base named by the run, plus these).
    """

    checkpoint_kind = "lora"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    @property
    def gradient_checkpointing(self) -> bool:
        return self.model.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:   # the loop sets it on the module it trains
        self.model.gradient_checkpointing = value

    def flops_per_token(self, seq_len: int | None = None) -> int:
        return self.model.flops_per_token(seq_len)

    def state_dict(self, *args, **kwargs):
        return dict(adapter_state(self.model))

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        load_adapter_state(self.model, dict(state))
        return nn.modules.module._IncompatibleKeys([], [])
