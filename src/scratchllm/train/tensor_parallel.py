"""Tensor parallelism (Megatron-style) on PyTorch's own `parallelize_module`: each block's heads and MLP split over K ranks.

    torchrun --nproc-per-node 2 -m scratchllm train --preset tiny-cpu parallel.tp=2
    torchrun --nproc-per-node 4 -m scratchllm train --preset tiny-cpu parallel.dp=fsdp parallel.tp=2   # 2-D

Inside every block, q, k, v (and the MLP's up/gate) are cut column-wise: each rank computes
n_head/K query heads (n_kv_head/K key/value heads) and hidden/K MLP units from the full input.
o and the MLP's down projection are cut row-wise: each rank multiplies its slice, and one
all-reduce sums the partial outputs. So a block costs two all-reduces forward and two backward,
and each rank holds 1/K of every block's weights. Embeddings, the final norm and the head stay
whole on every tp rank (their gradients are equal there: every tp rank sees the same batch).

With `sequence_parallel`, a block's norms and residual adds run on 1/K of the positions each: the
block's input is split along the sequence (no communication), the norm's output gathered before
attention and the MLP, and o/down reduce-scatter instead of all-reduce; the block's output is
gathered again, so the rest of the model never sees a sharded tensor.

This module knows the model's block layout and DeviceMesh; it knows nothing of data, losses or the loop.

>>> from scratchllm.model.config import ModelConfig
>>> check_tensor_parallel(ModelConfig(n_head=4, n_kv_head=2), 2)
>>> check_tensor_parallel(ModelConfig(n_head=6, n_kv_head=3), 2)
Traceback (most recent call last):
...
scratchllm.errors.UserError: parallel.tp=2 does not divide model.n_kv_head=3 (key/value heads); pick a tp that divides 3
"""

from __future__ import annotations

import torch
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (ColwiseParallel, PrepareModuleInput, PrepareModuleInputOutput,
                                               RowwiseParallel, SequenceParallel, parallelize_module)

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig

# Attention.forward(x, rope, cache, need_weights, mask, ve) and Block.forward(x, rope, cache, need_weights, mask,
# ve): only x is laid out over the mesh; the others pass through as they are.
_REST = (None, None, None, None, None)


def check_tensor_parallel(cfg: ModelConfig, tp: int) -> None:
    """Refuse a tp that does not cut the heads, kv heads and MLP into equal whole pieces."""
    if cfg.value_embeds:
        raise UserError(f"parallel.tp={tp} does not cut model.value_embeds (the tables add to whole values); "
                        "set model.value_embeds=0 or drop parallel.tp")
    for name, count, what in (("n_head", cfg.n_head, "query heads"), ("n_kv_head", cfg.kv_heads, "key/value heads"),
                              ("mlp_hidden", cfg.hidden_dim, "MLP hidden units")):
        if count % tp:
            raise UserError(f"parallel.tp={tp} does not divide model.{name}={count} ({what}); "
                            f"pick a tp that divides {count}")


def _block_plan(mlp_kind: str, sequence_parallel: bool) -> dict:
    """The per-block plan: which linear is cut which way, and where activations change layout."""
    mlp_in = ["mlp.up"] + (["mlp.gate"] if mlp_kind == "swiglu" else [])
    if not sequence_parallel:
        plan = {name: ColwiseParallel() for name in ["attn.q", "attn.k", "attn.v", *mlp_in]}
        return {**plan, "attn.o": RowwiseParallel(), "mlp.down": RowwiseParallel()}
    seq = Shard(1)  # [B, T, d] split along T
    plan = {
        "attn_norm": SequenceParallel(),
        "attn": PrepareModuleInput(input_layouts=(seq, *_REST), desired_input_layouts=(Replicate(), *_REST),
                                   use_local_output=True),
        "attn.o": RowwiseParallel(output_layouts=seq, use_local_output=False),
        "mlp_norm": SequenceParallel(),
        "mlp": PrepareModuleInput(input_layouts=(seq,), desired_input_layouts=(Replicate(),), use_local_output=True),
        "mlp.down": RowwiseParallel(output_layouts=seq, use_local_output=False),
    }
    plan.update({name: ColwiseParallel() for name in ["attn.q", "attn.k", "attn.v", *mlp_in]})
    return plan


def _qk_norm_plan() -> dict:
    """QK-norm's gains are shared by all heads, but each rank sees only its own heads: laid out as
    replicated DTensors over inputs split along dim 1 (heads), their gradients are summed over ranks."""
    return {name: SequenceParallel(sequence_dim=1, use_local_output=True) for name in ("attn.q_norm", "attn.k_norm")}


def parallelize(model: torch.nn.Module, mesh: DeviceMesh, sequence_parallel: bool = False) -> torch.nn.Module:
    """Cut every block of a `Transformer` over the 1-D `mesh` (in place; returns the model)."""
    tp = mesh.size()
    check_tensor_parallel(model.config, tp)
    for block in model.blocks:
        plan = _block_plan(model.config.mlp, sequence_parallel)
        if model.config.qk_norm:
            plan.update(_qk_norm_plan())
        if sequence_parallel:
            # The block's input arrives whole: each rank keeps its positions (a slice, no communication).
            # It returns (x, attention weights): x is gathered back to every position.
            parallelize_module(block, mesh, PrepareModuleInputOutput(
                input_layouts=(Replicate(), *_REST), desired_input_layouts=(Shard(1), *_REST),
                output_layouts=(Shard(1), None), desired_output_layouts=(Replicate(), None)))
        parallelize_module(block, mesh, plan)
        # subtle: each rank's projections now produce only its own heads; the view to
        # [B, T, heads, head_dim] in Attention.forward must count those, not the model's.
        block.attn.n_head //= tp
        block.attn.n_kv_head //= tp
    return model
