"""The memory planner: what one rank holds while training a model, per parallel layout, and whether it fits.

    scratchllm memory --preset gpt2-124m --gpus 8 --gpu-mem 80 train.batch_size=64
    scratchllm memory --preset gpt2-124m --gpus 8 parallel.tp=4 parallel.pp=8 train.grad_accum=8

Training state is arithmetic on the parameter count P (AdamW, fp32 master weights, which is
what the loop keeps even under bf16 autocast):

    weights 4P bytes + gradients 4P + optimizer 8P (two fp32 moments) + 4 per tensor (its step)

DDP replicates all of it on every rank; FSDP2 shards each tensor's first dimension over the N
ranks (ceil(rows / N) rows each, so a rank holds a little more than 1/N). Tensor parallel (tp=K)
cuts each block's q, k, v, o and MLP matrices K ways and keeps embeddings, norms, the head and
o/down's biases whole; fsdp+tp shards that over the N/K data ranks too. Pipeline parallel (pp=M)
gives each rank one stage's blocks, the first the embeddings and the last the final norm and
head (a tied matrix on both); the planner shows the larger of the two. Those figures are
exact: tests/distributed compares them with the bytes of real (and really cut) models, their
gradients and AdamW's state; `optimizer="adamw8bit"` counts 8-bit moments (train/adamw8bit.py). Activations are an *estimate* from the published formula for a transformer
layer (Korthikanti et al. 2022, "Reducing Activation Recomputation"): about 34·s·b·h bytes per
layer in 16-bit with fused attention (the 5·a·s²·b score term vanishes under SDPA/Flash), twice
that in fp32, plus the logits (s·b·V in the compute dtype and fp32 for the loss). Activation
checkpointing keeps only each block's input (s·b·h) and recomputes one block at a time.
Under TP the 34 splits into 10 kept whole (norm inputs, residual stream) and 24 cut K ways
(10 + 24/K), and sequence parallel cuts all of it (34/K); the logits are whole. Under PP with
1F1B the first stage keeps min(M, grad_accum) micro-batches of its L/M layers in flight (GPipe:
all grad_accum), and the last stage one micro-batch's logits (GPipe: grad_accum).
Not counted: the CUDA context, allocator fragmentation, communication buffers (allow ~10%).

This module knows shapes and byte counts only; it builds the model on the meta device (no memory).

>>> from scratchllm.model.config import ModelConfig
>>> plan = plan_memory(ModelConfig(vocab_size=64, block_size=8, n_layer=2, n_head=2, n_embd=16),
...                    batch_size=4, gpus=2, dtype_bytes=4)
>>> [(r.layout, r.params_bytes) for r in plan]
[('single', 30976), ('ddp', 30976), ('fsdp', 15488), ('tp', 18240), ('pp', 17344)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.adamw8bit import BLOCK
from scratchllm.train.pipeline import StageModule, stage_blocks

ADAM_STATE_BYTES = 8  # exp_avg + exp_avg_sq, fp32
STEP_BYTES = 4        # AdamW's per-tensor step counter (a 0-d fp32 tensor)
MIN_8BIT = 4096       # AdamW8bit's default min_8bit_size: smaller tensors keep fp32 moments
# Under tensor parallelism: weights cut along dim 0 (column-wise, with their biases) or dim 1 (row-wise)
COLWISE = ("attn.q.", "attn.k.", "attn.v.", "mlp.up.", "mlp.gate.")
ROWWISE = ("attn.o.weight", "mlp.down.weight")


@dataclass
class LayoutMemory:
    """One rank's bytes for one layout (all figures per rank)."""
    layout: str                # single | ddp | fsdp | tp | fsdp+tp | pp
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
    return list(_named_shapes(cfg).values())


def _named_shapes(cfg: ModelConfig, stage: tuple[int, int] | None = None) -> dict[str, torch.Size]:
    """{name: shape} of the distinct parameters, of the whole model or of pipeline stage (s, M)."""
    with torch.device("meta"):
        model = Transformer(cfg)
        if stage is not None:
            s, m = stage
            model = StageModule(model, stage_blocks(cfg.n_layer, m)[s], s == 0, s == m - 1)
    return {name: p.shape for name, p in model.named_parameters()}


def shard_elements(shapes: list[torch.Size], ranks: int) -> int:
    """Elements one rank holds when each tensor's first dimension is split over `ranks` (FSDP2, padded)."""
    return sum(math.ceil(s[0] / ranks) * math.prod(s[1:]) if len(s) else 1 for s in shapes)


def tensor_parallel_shapes(cfg: ModelConfig, tp: int) -> list[torch.Size]:
    """One tp rank's local parameter shapes: block matrices cut `tp` ways, the rest whole."""
    out = []
    for name, shape in _named_shapes(cfg).items():
        block = name.startswith("blocks.")
        if block and any(f".{c}" in name for c in COLWISE):
            shape = torch.Size([shape[0] // tp, *shape[1:]])
        elif block and name.endswith(ROWWISE):
            shape = torch.Size([shape[0], shape[1] // tp])
        out.append(shape)
    return out


def optimizer_bytes(shapes: list[torch.Size], optimizer: str = "adamw") -> int:
    """AdamW's state for tensors of these shapes: fp32 moments, or 8-bit ones with a scale a block."""
    total = STEP_BYTES * len(shapes)
    for s in shapes:
        n = math.prod(s)
        total += 2 * (n + 4 * math.ceil(n / BLOCK)) if optimizer == "adamw8bit" and n >= MIN_8BIT \
            else ADAM_STATE_BYTES * n
    return total


def activation_bytes(cfg: ModelConfig, rows: int, dtype_bytes: int, tp: int = 1, sequence_parallel: bool = False,
                     layers: int | None = None, logits: int = 1) -> tuple[int, int]:
    """(plain, checkpointed) activation bytes for `rows` sequences of block_size tokens (estimates).

    `layers`: how many blocks this rank runs (default all); `logits`: how many micro-batches'
    logits it keeps (0 on a pipeline stage without the head).
    """
    s, h, V = cfg.block_size, cfg.n_embd, cfg.vocab_size
    L = cfg.n_layer if layers is None else layers
    # the formula counts 16-bit values: 10·sbh whole on every tp rank, 24·sbh cut (all 34 with sequence parallel)
    per_layer = (34 * s * rows * h // tp if sequence_parallel else (10 + 24 / tp) * s * rows * h) * dtype_bytes / 2
    per_layer = int(per_layer)
    head = logits * s * rows * V * (dtype_bytes + 4)     # logits, and the fp32 copy the loss reads
    block_input = s * rows * h * dtype_bytes // (tp if sequence_parallel else 1)
    plain = L * per_layer + head
    checkpointed = L * block_input + min(L, 1) * per_layer + head  # block inputs + one block recomputed
    return plain, checkpointed


def plan_memory(cfg: ModelConfig, batch_size: int, gpus: int = 1, dtype_bytes: int = 2, tp: int = 0,
                pp: int = 0, grad_accum: int = 1, pp_schedule: str = "1f1b", sequence_parallel: bool = False,
                optimizer: str = "adamw") -> list[LayoutMemory]:
    """Per-rank memory of each layout on `gpus` ranks for a global micro-batch of `batch_size` rows.

    `dtype_bytes`: 2 for bf16 autocast (CUDA), 4 for fp32 (CPU). tp / pp: the tensor- and
    pipeline-parallel degrees to plan (0 = all `gpus` ranks, where the model allows it: tp must
    divide the heads, kv heads and MLP, pp is at most n_layer); fsdp+tp is planned when tp < gpus.
    """
    whole = parameter_shapes(cfg)
    tp = tp or gpus
    pp = pp or min(gpus, cfg.n_layer)
    out = [_layout("single", 1, whole, cfg, batch_size, dtype_bytes, optimizer)]
    if gpus > 1:
        out.append(_layout("ddp", gpus, whole, cfg, batch_size // gpus, dtype_bytes, optimizer))
        out.append(_layout("fsdp", gpus, whole, cfg, batch_size // gpus, dtype_bytes, optimizer, shard=gpus))
    cuts = all(n % tp == 0 for n in (cfg.n_head, cfg.kv_heads, cfg.hidden_dim))
    if gpus > 1 and tp > 1 and cuts and gpus % tp == 0:
        local = tensor_parallel_shapes(cfg, tp)
        act = dict(tp=tp, sequence_parallel=sequence_parallel)
        dp = gpus // tp
        if dp == 1:
            out.append(_layout("tp", tp, local, cfg, batch_size, dtype_bytes, optimizer, **act))
        else:
            out.append(_layout("fsdp+tp", gpus, local, cfg, batch_size // dp, dtype_bytes, optimizer, shard=dp, **act))
    if gpus > 1 and 1 < pp <= cfg.n_layer and gpus == pp:
        out.append(_pipeline_layout(cfg, pp, batch_size, grad_accum, pp_schedule, dtype_bytes, optimizer))
    return out


def _layout(name, ranks, shapes, cfg, rows, dtype_bytes, optimizer, shard=1, tp=1, sequence_parallel=False):
    elements = shard_elements(shapes, shard) if shard > 1 else sum(math.prod(s) for s in shapes)
    shard_shapes = [torch.Size([math.ceil(s[0] / shard), *s[1:]]) if len(s) else s for s in shapes]
    plain, checkpointed = activation_bytes(cfg, max(1, rows), dtype_bytes, tp, sequence_parallel)
    return LayoutMemory(name, ranks, 4 * elements, 4 * elements, optimizer_bytes(shard_shapes, optimizer),
                        plain, checkpointed)


def _pipeline_layout(cfg, pp, rows, grad_accum, schedule, dtype_bytes, optimizer) -> LayoutMemory:
    """The busier of the first stage (embeddings, most micro-batches in flight) and the last (the head)."""
    stages = []
    for s in (0, pp - 1):
        shapes = list(_named_shapes(cfg, (s, pp)).values())
        layers = len(stage_blocks(cfg.n_layer, pp)[s])
        in_flight = grad_accum if schedule == "gpipe" else min(pp - s, grad_accum)
        logits = (grad_accum if schedule == "gpipe" else 1) if s == pp - 1 else 0
        plain, ckpt = activation_bytes(cfg, rows, dtype_bytes, layers=layers * in_flight, logits=logits)
        n = sum(math.prod(x) for x in shapes)
        stages.append(LayoutMemory("pp", pp, 4 * n, 4 * n, optimizer_bytes(shapes, optimizer), plain, ckpt))
    return max(stages, key=LayoutMemory.total)


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
