"""The memory planner: what one rank holds while training a model, per parallel layout, and whether it fits.

    scratchllm memory --preset gpt2-124m --gpus 8 --gpu-mem 80 train.batch_size=64

Training state is arithmetic on the parameter count P (AdamW, fp32 master weights, which is
what the loop keeps even under bf16 autocast):

    weights 4P bytes + gradients 4P + optimizer 8P (two fp32 moments) + 4 per tensor (its step)

DDP replicates all of it on every rank; FSDP2 shards each tensor's first dimension over the N
ranks (ceil(rows / N) rows each, so a rank holds a little more than 1/N). Those figures are
exact: tests/distributed compares them with the bytes of a real model, its gradients and
AdamW's state. Activations are an *estimate* from the published formula for a transformer
layer (Korthikanti et al. 2022, "Reducing Activation Recomputation"): about 34·s·b·h bytes per
layer in 16-bit with fused attention (the 5·a·s²·b score term vanishes under SDPA/Flash), twice
that in fp32, plus the logits (s·b·V in the compute dtype and fp32 for the loss). Activation
checkpointing keeps only each block's input (s·b·h) and recomputes one block at a time.
Not counted: the CUDA context, allocator fragmentation, communication buffers (allow ~10%).

This module knows shapes and byte counts only; it builds the model on the meta device (no memory).

>>> from scratchllm.model.config import ModelConfig
>>> plan = plan_memory(ModelConfig(vocab_size=64, block_size=8, n_layer=2, n_head=2, n_embd=16),
...                    batch_size=4, gpus=2, dtype_bytes=4)
>>> [(r.layout, r.params_bytes) for r in plan]
[('single', 30976), ('ddp', 30976), ('fsdp', 15488)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer

ADAM_STATE_BYTES = 8  # exp_avg + exp_avg_sq, fp32
STEP_BYTES = 4        # AdamW's per-tensor step counter (a 0-d fp32 tensor)


@dataclass
class LayoutMemory:
    """One rank's bytes for one layout (all figures per rank)."""
    layout: str                # single | ddp | fsdp
    ranks: int
    params_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int      # plain: every layer's activations kept for backward
    checkpointed_bytes: int     # with activation checkpointing on every block

    def total(self, checkpointing: bool = False) -> int:
        state = self.params_bytes + self.grads_bytes + self.optimizer_bytes
        return state + (self.checkpointed_bytes if checkpointing else self.activations_bytes)


def parameter_shapes(cfg: ModelConfig) -> list[torch.Size]:
    """Shapes of the model's distinct parameter tensors (tied ones once), built on the meta device."""
    with torch.device("meta"):
        model = Transformer(cfg)
    return [p.shape for p in model.parameters()]


def shard_elements(shapes: list[torch.Size], ranks: int) -> int:
    """Elements one rank holds when each tensor's first dimension is split over `ranks` (FSDP2, padded)."""
    return sum(math.ceil(s[0] / ranks) * math.prod(s[1:]) if len(s) else 1 for s in shapes)


def activation_bytes(cfg: ModelConfig, rows: int, dtype_bytes: int) -> tuple[int, int]:
    """(plain, checkpointed) activation bytes for `rows` sequences of block_size tokens (estimates)."""
    s, h, L, V = cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.vocab_size
    per_layer = 34 * s * rows * h * dtype_bytes // 2   # the formula counts 16-bit values
    logits = s * rows * V * (dtype_bytes + 4)           # logits, and the fp32 copy the loss reads
    plain = L * per_layer + logits
    checkpointed = L * s * rows * h * dtype_bytes + per_layer + logits  # block inputs + one block recomputed
    return plain, checkpointed


def plan_memory(cfg: ModelConfig, batch_size: int, gpus: int = 1, dtype_bytes: int = 2) -> list[LayoutMemory]:
    """Per-rank memory of one process, DDP and FSDP2 on `gpus` ranks for a global micro-batch of `batch_size` rows.

    `dtype_bytes`: 2 for bf16 autocast (CUDA), 4 for fp32 (CPU).
    """
    shapes = parameter_shapes(cfg)
    layouts = [("single", 1)] + ([("ddp", gpus), ("fsdp", gpus)] if gpus > 1 else [])
    out = []
    for layout, ranks in layouts:
        elements = shard_elements(shapes, ranks) if layout == "fsdp" else sum(math.prod(s) for s in shapes)
        rows = max(1, batch_size // ranks)
        plain, checkpointed = activation_bytes(cfg, rows, dtype_bytes)
        out.append(LayoutMemory(layout, ranks, 4 * elements, 4 * elements,
                                ADAM_STATE_BYTES * elements + STEP_BYTES * len(shapes), plain, checkpointed))
    return out


def _gib(n: int) -> str:
    return f"{n / 2**30:8.2f}"


def format_plan(plan: list[LayoutMemory], gpu_mem_gib: float) -> str:
    """The planner's table: GiB per rank, and whether each layout fits in `gpu_mem_gib`, with and without checkpointing."""
    head = (f"{'layout':<8} {'ranks':>5} {'params':>8} {'grads':>8} {'optim':>8} {'activ':>8} {'ckpt-act':>8} "
            f"{'total':>8} {'+ckpt':>8}  fits in {gpu_mem_gib:g} GiB")
    lines = [head, "-" * len(head)]
    limit = gpu_mem_gib * 2**30
    for r in plan:
        plain, ckpt = r.total(), r.total(checkpointing=True)
        fits = "yes" if plain <= limit else ("with checkpointing" if ckpt <= limit else "no")
        lines.append(f"{r.layout:<8} {r.ranks:>5} {_gib(r.params_bytes)} {_gib(r.grads_bytes)} "
                     f"{_gib(r.optimizer_bytes)} {_gib(r.activations_bytes)} {_gib(r.checkpointed_bytes)} "
                     f"{_gib(plain)} {_gib(ckpt)}  {fits}")
    return "\n".join(lines)
