"""Sharded checkpoints with `torch.distributed.checkpoint` (DCP): every rank writes its own shards, nothing is gathered.

    torchrun --nproc-per-node 8 -m scratchllm train ... parallel.dp=fsdp parallel.checkpoint=sharded
    torchrun ... parallel.checkpoint=sharded parallel.async_checkpoint=true   # write while training goes on
    scratchllm consolidate --run runs/big        # the newest step as the usual model.safetensors + optimizer.pt

The consolidated save (train/distributed.py) brings every tensor to rank 0 and needs the whole
training state in its memory. Here `checkpoints/step-N/dcp/` holds one file a rank plus DCP's
`.metadata`, which records where each piece of each tensor lies. Loading reads the pieces the
*loading* layout needs, so a run saved sharded at N ranks resumes at any M (also one plain
process), and `load_run` (generate, eval, export) reads it in one process.

The step directory appears at its final name only when every rank's files and `state.json` are
written (built as `.step-N.tmp`, renamed by rank 0), as for every checkpoint. With `async`, the
state is copied to memory at the step and written by a background thread over its own gloo group
(training's collectives keep theirs); the directory is finished before the next save and at the end.

This module knows DCP, state dicts and step directories; it knows nothing of data or the loop's schedule.

>>> import tempfile, torch
>>> run = tempfile.mkdtemp(); net = torch.nn.Linear(3, 2); opt = torch.optim.AdamW(net.parameters())
>>> _ = SaveInFlight.start(run, 5, net, opt, {"tokens": 10}).finish()
>>> found = ckpt.find_checkpoint(run); found.state["kind"], found.step
('sharded', 5)
>>> other = torch.nn.Linear(3, 2); load(other, torch.optim.AdamW(other.parameters()), found)
>>> torch.equal(other.weight, net.weight)
True
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import load_run_config
from scratchllm.train.optim import make_optimizer
from scratchllm.utils.atomic import atomic_write_text

DCP_DIR, KIND = ckpt.DCP_DIR, ckpt.SHARDED_KIND


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """The model's (and optimizer's) state as DCP saves it: keyed by parameter names, shards where sharded."""
    if optimizer is None:
        return {"model": model.state_dict()}
    model_state, optim_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optim": optim_state}


_ASYNC_GROUPS: dict = {}  # a gloo group for background writes per process group, made once (a collective)


def _async_group():
    """The group async saves talk over, so the writer thread never shares a group with training's collectives."""
    if not dist.is_initialized():
        return None
    world = dist.group.WORLD
    if world not in _ASYNC_GROUPS:
        _ASYNC_GROUPS[world] = dist.new_group(backend="gloo")
    return _ASYNC_GROUPS[world]


class SaveInFlight:
    """A sharded save under way: `start` writes (or begins writing) the shards, `finish` completes the step directory."""

    def __init__(self, run_dir: Path, step: int, record: dict, future=None):
        self.run_dir, self.step, self.record, self.future = run_dir, step, record, future
        self.tmp = run_dir / "checkpoints" / f".step-{step:06d}.tmp"

    @classmethod
    def start(cls, run_dir, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
              state: dict[str, Any], async_save: bool = False) -> "SaveInFlight":
        """Every rank calls it (a collective): its shards go to `.step-N.tmp/dcp/`."""
        run_dir = Path(run_dir)
        self = cls(run_dir, step, {"format": ckpt.FORMAT_VERSION, "step": step, "kind": KIND, **state})
        if _rank() == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)  # a save killed at this step before
            (self.tmp / DCP_DIR).mkdir(parents=True)
        _barrier()
        if async_save:
            self.future = dcp.async_save(_state(model, optimizer), checkpoint_id=str(self.tmp / DCP_DIR),
                                         process_group=_async_group())
        else:
            dcp.save(_state(model, optimizer), checkpoint_id=str(self.tmp / DCP_DIR))
        return self

    def finish(self) -> Path:
        """Wait for the shards; rank 0 then writes state.json (each file's size and checksum) and renames."""
        if self.future is not None:
            self.future.result()
        _barrier()  # every rank's files are on disk
        target = ckpt.step_dir(self.run_dir, self.step)
        if _rank() == 0:
            files = sorted(str(p.relative_to(self.tmp)) for p in (self.tmp / DCP_DIR).rglob("*") if p.is_file())
            self.record["files"] = {name: ckpt._file_record(self.tmp / name) for name in files}
            atomic_write_text(self.tmp / "state.json", json.dumps(self.record))
            for f in self.tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            old = target.with_name(f".{target.name}.old")  # a step saved again (a resume): replace it whole
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(self.tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        _barrier()  # no rank resumes from a directory rank 0 has not renamed yet
        return target


def is_sharded_checkpoint(found: ckpt.Checkpoint) -> bool:
    return found.state.get("kind") == KIND


def load(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, found: ckpt.Checkpoint) -> None:
    """Read a sharded checkpoint into `model` (and `optimizer`) in whatever layout they are now (any world size)."""
    if optimizer is not None and not any(name.startswith(f"{DCP_DIR}/") for name in found.state["files"]):
        raise UserError(f"checkpoint '{found.path}' holds no shards; delete it to fall back to an earlier one")
    state = _state(model, optimizer)
    dcp.load(state, checkpoint_id=str(found.path / DCP_DIR))
    if optimizer is None:
        model.load_state_dict(state["model"])
    else:
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def consolidate(run_dir, step: int | None = None) -> Path:
    """Rewrite a sharded step (default: the newest) as the usual model.safetensors + optimizer.pt, in one process.

    The result is an ordinary checkpoint: every command reads it, and it resumes at any layout.
    """
    if not Path(run_dir).is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; pass the --out directory of a training run")
    found = ckpt.find_checkpoint(run_dir, step)
    if not is_sharded_checkpoint(found):
        raise UserError(f"checkpoint '{found.path}' is already consolidated (model.safetensors); nothing to do")
    config = load_run_config(run_dir)
    model = Transformer(config.model)
    optimizer = make_optimizer(model, config.train)
    load(model, optimizer, found)
    keep = {k: v for k, v in found.state.items() if k not in ("format", "step", "kind", "files")}
    return ckpt.save_checkpoint(run_dir, found.step, model, optimizer, keep)
