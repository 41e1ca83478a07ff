"""How a run's checkpoints are written and read back in every layout, and which of them are kept.

`train/loop.py` decides *when* to save and *what* the run's own state is (step, tokens, RNGs,
loader position); this file decides *how*, by the layout:

- one process: `checkpoint.save_checkpoint` of the model and optimizer as they are;
- torchrun, `parallel.checkpoint=full` (default): every rank takes part in gathering whole
  tensors (FSDP2 and TP shards, pipeline stages), rank 0 writes the usual files;
- `parallel.checkpoint=sharded`: DCP, every rank its own shards (`sharded_checkpoint.py`),
  optionally written in the background and completed by the next save.

Under torchrun each rank's RNG and loader state go into state.json's "ranks" list, restored when
the world size matches. After each save the retention policy prunes old steps (rank 0).

>>> import tempfile, torch
>>> from scratchllm.train.config import TrainConfig
>>> from scratchllm.train.distributed import World
>>> run = tempfile.mkdtemp(); net = torch.nn.Linear(2, 2); opt = torch.optim.SGD(net.parameters())
>>> saver = RunSaver(run, TrainConfig(keep_checkpoints=1), None, World())
>>> [saver.save(step, net, opt, {"rng": ckpt.rng_state()}).name for step in (1, 2)], ckpt.list_steps(run)
(['step-000001', 'step-000002'], [2])
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path

import torch

from scratchllm.train import checkpoint as ckpt
from scratchllm.train import distributed, sharded_checkpoint
from scratchllm.train.config import ParallelConfig, TrainConfig
from scratchllm.train.health import steps_to_keep
from scratchllm.train.pipeline import Pipeline


class RunSaver:
    """Writes and reads one run's checkpoints for this rank's layout (`pc` None: a config without [parallel])."""

    def __init__(self, out_dir, tc: TrainConfig, pc: ParallelConfig | None, world: distributed.World,
                 pipeline: Pipeline | None = None):
        self.out_dir, self.tc, self.world, self.pipeline = Path(out_dir), tc, world, pipeline
        self.sharded = pc is not None and pc.checkpoint == "sharded"
        self.async_save = pc is not None and pc.async_checkpoint
        self.pending: sharded_checkpoint.SaveInFlight | None = None

    def save(self, step: int, raw: torch.nn.Module, optimizer, state: dict, final: bool = True) -> Path:
        """Write step `step` (a collective under torchrun); `final=False` lets an async save run on."""
        if self.world.size > 1:
            state["ranks"] = distributed.gather_objects({k: v for k, v in state.items() if k in ("rng", "loader")})
        if self.sharded:
            self.finish_pending()
            self.pending = sharded_checkpoint.SaveInFlight.start(self.out_dir, step, raw, optimizer, state,
                                                                 async_save=self.async_save and not final)
            if self.async_save and not final:
                return ckpt.step_dir(self.out_dir, step)  # appears when the next save (or the end) completes it
            return self.finish_pending()
        if self.world.size == 1:
            path = ckpt.save_checkpoint(self.out_dir, step, raw, optimizer, state)
            self.prune()
            return path
        model, optimizer = distributed.gathered_state(raw, optimizer, self.pipeline)
        target = ckpt.step_dir(self.out_dir, step)
        if self.world.is_main:
            target = ckpt.save_checkpoint(self.out_dir, step, model, optimizer, state)
            self.prune()
        distributed.barrier()  # no rank reads or resumes a checkpoint rank 0 is still writing
        return target

    def finish_pending(self) -> Path | None:
        """Complete a sharded save still being written (its step directory then appears), and prune."""
        if self.pending is None:
            return None
        path, self.pending = self.pending.finish(), None
        if self.world.is_main:
            self.prune()
        return path

    def load(self, found: ckpt.Checkpoint, raw: torch.nn.Module, optimizer, device: torch.device) -> None:
        """Weights and optimizer state of `found` into this rank's model, whatever layout saved it."""
        if sharded_checkpoint.is_sharded_checkpoint(found):  # DCP reads the pieces this layout needs
            sharded_checkpoint.load(raw, optimizer, found)
        else:
            distributed.load_checkpoint(raw, optimizer, found, device, self.pipeline)

    def prune(self) -> None:
        """Apply the retention policy: newest keep_checkpoints, every keep_every-th, the best by val_loss."""
        steps = ckpt.list_steps(self.out_dir)
        val = {}
        if self.tc.keep_best:
            for s in steps:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    loss = json.loads((ckpt.step_dir(self.out_dir, s) / "state.json").read_text())["val_loss"]
                    val[s] = loss if loss is not None else math.inf
        for s in set(steps) - steps_to_keep(steps, self.tc.keep_checkpoints, self.tc.keep_every, val):
            shutil.rmtree(ckpt.step_dir(self.out_dir, s), ignore_errors=True)
