"""Data-parallel training on PyTorch's own engine: `torchrun` + DDP or FSDP2, plugged into the one loop.

    torchrun --nproc-per-node 2 -m scratchllm train --preset tiny-cpu parallel.dp=ddp
    torchrun --nproc-per-node 8 -m scratchllm train --preset gpt2-124m parallel.dp=fsdp

This module knows processes, wrappers and collectives; it knows nothing of data or losses.
`train.batch_size` is the *global* batch: each of the N ranks draws `batch_size / N` rows,
so a run on N ranks takes the same optimizer steps as one process on the whole batch.

- `setup` starts the process group from torchrun's environment (gloo on CPU, NCCL on CUDA).
- `wrap` puts DDP around the model, or `fully_shard`s each block and then the root (FSDP2:
  parameters, gradients and optimizer state sharded over ranks; bf16 parameters with fp32
  gradient reduction on CUDA; optional resharding after forward and CPU offload).
- `no_sync` skips the gradient all-reduce on all but the last micro-batch of a step.
- `full_model_state` / `full_optimizer_state` gather a sharded model into the run's usual
  consolidated files (model.safetensors, optimizer.pt with integer parameter ids), so every
  other command reads a distributed run, and a run saved at N ranks resumes at any M.

Outside torchrun nothing changes: one process, no process group, `wrap` is never called.

>>> World().rank, World().size, World().is_main
(0, 1, True)
>>> check_batch(ParallelConfig(dp="ddp"), batch_size=6, world_size=4)
Traceback (most recent call last):
...
scratchllm.errors.UserError: train.batch_size=6 does not divide over 4 ranks; pass a multiple of 4 (the global batch is split evenly)
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_model_state_dict,
                                                     set_optimizer_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel
from safetensors.torch import load_file

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import pipeline, tensor_parallel
from scratchllm.train.config import ParallelConfig


class World:
    """This process's place: rank, world size, and whether it is the one that logs and writes.

    `data_rank` / `data_size`: its place among the ranks that draw different rows. The tp ranks
    of one model replica (consecutive ranks, the mesh's inner dimension), like the pp stages of
    a pipeline, see the same rows, so there are size / (tp·pp) data ranks; `replicas` is how many
    ranks count each row (tp·pp).
    """

    def __init__(self, pc: ParallelConfig | None = None):
        initialized = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if initialized else 0
        self.size = dist.get_world_size() if initialized else 1
        self.is_main = self.rank == 0
        self.replicas = pc.tp * pc.pp if pc is not None and self.size > 1 else 1
        self.data_rank, self.data_size = self.rank // self.replicas, self.size // self.replicas


def launched_size() -> int:
    """Processes torchrun started (WORLD_SIZE in the environment; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch(pc: ParallelConfig, batch_size: int, world_size: int) -> None:
    """Refuse a launch the layout cannot run, before any collective (so every rank says it, none hangs).

    (The model's side, tp against the heads and pp against the blocks, is checked by `check_layout`.)"""
    if pc.pp > 1:
        if world_size != pc.pp:
            raise UserError(f"parallel.pp={pc.pp} needs exactly {pc.pp} processes (one stage each) but torchrun "
                            f"started {world_size}; launch --nproc-per-node {pc.pp} "
                            "(pipelining does not combine with dp or tp here)")
        if pc.dp != "none":
            raise UserError(f"parallel.pp={pc.pp} does not combine with parallel.dp={pc.dp} here; pass parallel.dp=none")
        return
    if world_size % pc.tp:
        raise UserError(f"parallel.tp={pc.tp} does not divide the {world_size} processes torchrun started; "
                        f"launch a multiple of {pc.tp} (--nproc-per-node)")
    data_ranks = world_size // pc.tp
    if data_ranks > 1 and pc.dp == "none":
        raise UserError(f"torchrun started {world_size} processes but parallel.dp=none"
                        + (f" with parallel.tp={pc.tp}" if pc.tp > 1 else "")
                        + "; pass parallel.dp=ddp or parallel.dp=fsdp (or run one process)")
    if pc.tp > 1 and pc.dp == "ddp":
        raise UserError(f"parallel.tp={pc.tp} composes with parallel.dp=fsdp (a 2-D mesh), not ddp; "
                        "pass parallel.dp=fsdp")
    if batch_size % data_ranks:
        raise UserError(f"train.batch_size={batch_size} does not divide over {data_ranks} ranks; "
                        f"pass a multiple of {data_ranks} (the global batch is split evenly)")


def check_layout(pc: ParallelConfig, cfg: ModelConfig, grad_accum: int, optimizer: str = "adamw") -> None:
    """Refuse a tp or pp the model cannot be cut into, before any collective (every rank says it)."""
    if optimizer == "adamw8bit" and (pc.dp == "fsdp" or pc.tp > 1):
        raise UserError("train.optimizer=adamw8bit keeps whole-tensor blocks, which FSDP and tp shard; "
                        "use it with parallel.dp=ddp, parallel.pp or one process")
    if optimizer == "muon" and pc.tp > 1:
        raise UserError("train.optimizer=muon orthogonalises whole matrices, which parallel.tp cuts; "
                        "use it with parallel.dp=ddp, parallel.pp or one process")
    if pc.checkpoint == "sharded" and pc.pp > 1:
        raise UserError("parallel.checkpoint=sharded is not written for pipeline stages here; "
                        "drop it (parallel.pp saves the usual gathered checkpoint)")
    if pc.tp > 1:
        tensor_parallel.check_tensor_parallel(cfg, pc.tp)
    if pc.pp > 1:
        pipeline.check_pipeline(pc, cfg.n_layer, grad_accum)


def setup(pc: ParallelConfig, batch_size: int, device: torch.device) -> World:
    """Start the process group when launched by torchrun with more than one process; returns the World."""
    size = launched_size()
    check_batch(pc, batch_size, size)
    if size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # A short timeout: a rank that died turns into an error on the others, not a half-hour hang.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=10))
    return World(pc)


def device_for_rank(device: torch.device) -> torch.device:
    """CUDA ranks use their own GPU (LOCAL_RANK); other devices are shared."""
    if device.type == "cuda" and launched_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(raw: torch.nn.Module, pc: ParallelConfig, device: torch.device) -> torch.nn.Module:
    """The module the step runs through: DDP around `raw`, or `raw` itself cut in place (TP, FSDP2, both).

    With tp > 1 the ranks form a 2-D mesh (data ranks × tp ranks, tp the inner, consecutive
    dimension): blocks are cut over "tp", then FSDP2 shards the result over "dp".
    Build the optimizer after this: TP and FSDP2 replace parameters by DTensors.
    """
    if pc.dp == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(raw, device_ids=ids)
    mesh = None
    if pc.tp > 1:
        mesh = init_device_mesh(device.type, (World().size // pc.tp, pc.tp), mesh_dim_names=("dp", "tp"))
        tensor_parallel.parallelize(raw, mesh["tp"], pc.sequence_parallel)
        if pc.dp == "none":
            return raw
        mesh = mesh["dp"]
    kwargs: dict[str, Any] = {"reshard_after_forward": pc.reshard_after_forward, "mesh": mesh}
    if device.type == "cuda":
        # bf16 compute and all-gathers, fp32 gradient reduction: the sum over ranks keeps its precision.
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if pc.cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    # One FSDP unit per block: only one block's full parameters exist at a time; the root unit
    # holds what is left (embeddings, final norm, head), so tied embeddings stay in one unit.
    for block in raw.blocks:
        fully_shard(block, **kwargs)
    fully_shard(raw, **kwargs)
    return raw


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether parameters are DTensors (FSDP2, TP): checkpoints then gather them to whole tensors."""
    return any(isinstance(p, DTensor) for p in model.parameters())


@contextlib.contextmanager
def no_sync(model: torch.nn.Module):
    """Accumulate this micro-batch's gradients locally, without the all-reduce (DDP) or reduce-scatter (FSDP2)."""
    if isinstance(model, DistributedDataParallel):
        with model.no_sync():
            yield
        return
    if not hasattr(model, "set_requires_gradient_sync"):  # tensor parallel alone: no gradient sync to defer
        yield
        return
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def full_tensor(value):
    """A plain tensor from a DTensor (FSDP2's sharded grad norm); anything else as it is."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def clip_grad_norm_(params, max_norm: float) -> torch.Tensor:
    """torch's clip_grad_norm_, also over a mix of plain tensors and DTensors on different meshes.

    Under TP (+ FSDP) the block weights live on one mesh, embeddings on another or none at all;
    torch's fused norm refuses such a mix, so each gradient's norm is taken whole, one by one.
    """
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    if not any(isinstance(g, DTensor) for g in grads) or all(
            isinstance(g, DTensor) and g.device_mesh == grads[0].device_mesh for g in grads):
        return full_tensor(torch.nn.utils.clip_grad_norm_(params, max_norm))
    total = torch.stack([full_tensor(torch.linalg.vector_norm(g)) for g in grads]).norm()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0).item()  # torch's own epsilon; a host sync a step
    for g in grads:
        g.mul_(scale)
    return total


def all_sum(value) -> torch.Tensor:
    """The sum over ranks of a number or tensor (identity in one process)."""
    t = torch.as_tensor(value, dtype=torch.float64).clone()
    if World().size > 1:
        # subtle: gloo reduces CPU tensors only, NCCL CUDA ones; the count lives wherever the group does.
        where = t.cuda() if dist.get_backend() == "nccl" else t
        dist.all_reduce(where)
        t = where.cpu()
    return t


def gather_objects(obj: Any) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    out: list = [None] * World().size
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if World().size > 1:
        dist.barrier()


_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_model_state(raw: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The consolidated state dict on rank 0 (empty elsewhere); a collective: every rank calls it."""
    state = get_model_state_dict(raw, options=_FULL)
    # subtle: gathering copies each name, so tied weights (embedding = head) arrive twice; alias
    # them again, so the file holds one copy exactly as a one-process save writes it.
    first: dict[int, str] = {}
    for name, tensor in raw.state_dict(keep_vars=True).items():
        first.setdefault(id(tensor), name)
        if state and first[id(tensor)] != name:
            state[name] = state[first[id(tensor)]]
    return state


def full_optimizer_state(raw: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's consolidated state on rank 0, keyed like a one-process `optimizer.state_dict()`.

    torch names parameters by their module path in a gathered state; a plain optimizer numbers
    them in the order of its groups. Renumbering makes the file the one `load_optimizer` reads.
    """
    named = get_optimizer_state_dict(raw, optimizer, options=_FULL)
    if not named:
        return {}
    order = [name for group in named["param_groups"] for name in group["params"]]
    index = {name: i for i, name in enumerate(order)}
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in named["param_groups"]]
    return {"state": {index[n]: s for n, s in named["state"].items()}, "param_groups": groups}


class StateDictModule(torch.nn.Module):
    """A gathered state dict posing as a module, so `save_checkpoint` writes it like any model."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        return self._state


class StateDictOptimizer:
    """A gathered optimizer state posing as an optimizer, for `save_checkpoint`."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def gathered_state(raw: torch.nn.Module, optimizer: torch.optim.Optimizer, pipe: pipeline.Pipeline | None = None):
    """(model, optimizer) as rank 0 saves them: whole tensors, numbered as a one-process run's; a collective.

    A sharded model (FSDP2, TP) is gathered; a pipeline's stages send their parts to rank 0,
    whose copy of the whole model takes them. Elsewhere the result is not written.
    """
    if pipe is not None:
        weights, moments = pipe.gather_state(raw, optimizer)
        if not World().is_main:
            return raw, optimizer
        raw.load_state_dict(weights)
        return raw, StateDictOptimizer(pipeline.one_process_optimizer_state(raw, optimizer, moments))
    if is_sharded(raw):
        return StateDictModule(full_model_state(raw)), StateDictOptimizer(full_optimizer_state(raw, optimizer))
    return raw, optimizer


def load_checkpoint(raw: torch.nn.Module, optimizer: torch.optim.Optimizer, found, device: torch.device,
                    pipe: pipeline.Pipeline | None = None) -> None:
    """Load a consolidated checkpoint (read by every rank) into a plain, sharded or pipelined model."""
    if is_sharded(raw):
        return load_full_checkpoint(raw, optimizer, found)
    ckpt.load_weights(raw, found, device)
    if pipe is None:
        return ckpt.load_optimizer(optimizer, found, device)
    if not found.has_optimizer:
        raise UserError(f"checkpoint '{found.path}' has no optimizer state, so it cannot be resumed; start a new run from it")
    saved = torch.load(found.path / "optimizer.pt", map_location=device, weights_only=True)
    optimizer.load_state_dict(pipeline.stage_optimizer_state(raw, optimizer, saved))


def load_full_checkpoint(raw: torch.nn.Module, optimizer: torch.optim.Optimizer, found) -> None:
    """Load a consolidated checkpoint (`train.checkpoint.Checkpoint`, read by every rank) into a sharded model."""
    if not found.has_optimizer:
        raise UserError(f"checkpoint '{found.path}' has no optimizer state, so it cannot be resumed; start a new run from it")
    weights = load_file(str(found.path / "model.safetensors"))
    # subtle: the file holds one name of a tied pair (safetensors drops aliases); the model wants both.
    saved_as = {id(t): name for name, t in raw.state_dict(keep_vars=True).items() if name in weights}
    for name, tensor in raw.state_dict(keep_vars=True).items():
        weights.setdefault(name, weights[saved_as[id(tensor)]])
    optim_state = torch.load(found.path / "optimizer.pt", map_location="cpu", weights_only=True)
    set_model_state_dict(raw, weights, options=StateDictOptions(full_state_dict=True))
    names = {id(p): n for n, p in raw.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    named = {"state": {order[int(i)]: s for i, s in optim_state["state"].items()},
             "param_groups": [{**g, "params": [order[int(i)] for i in g["params"]]}
                              for g in optim_state["param_groups"]]}
    set_optimizer_state_dict(raw, optimizer, named, options=StateDictOptions(full_state_dict=True))


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
