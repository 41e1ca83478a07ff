"""The one training loop. Pretraining, SFT, DPO and reward models differ in batches and loss only.

    train(model, cfg, batches, out_dir, loss_fn=next_token_loss, val_batches=...)

- `batches`: an iterator of batches (any nesting of tensors); if it has `state_dict()` /
  `load_state_dict()` (like `TokenLoader`) its position is checkpointed for exact resume.
- `loss_fn(model, batch) -> loss` or `(loss, metrics)`: the mean loss of one micro-batch, and
  optionally a dict of extra scalars (DPO's reward margins, a reward model's accuracy) that the
  loop averages over the accumulation and logs next to the loss (`val_<name>` on validation).
  The default is next-token cross-entropy on `(inputs, targets)`; targets equal to -100 are
  ignored (masks), and they do not count as tokens for tokens/s or the validation weighting.
  A loss function whose batch has no targets reports its own count as `metrics["tokens"]`.
- `val_batches`: a fixed list of batches, scored every `eval_every` steps and at the end, so
  every validation of a run (and of runs on the same data) sees the same tokens.

One optimizer step = `grad_accum` micro-batches whose losses are each divided by
`grad_accum` before backward, so the summed gradient is the gradient of the mean loss
over all of them: k micro-batches of b rows give the same update as one batch of k·b rows.
On CUDA the forward runs under bf16 autocast (weights and optimizer stay fp32); then the
gradient norm is clipped, the learning rate set from the schedule (times a parameter group's
`lr_mult`, for Muon or LoRA's separate rates), and the optimizer steps.

>>> from scratchllm.train.config import RunConfig          # doctest: +SKIP
>>> train(model, RunConfig(), TokenLoader(...), "runs/x")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from tqdm import tqdm

from scratchllm.config import dumps_toml
from scratchllm.errors import UserError
from scratchllm.model.flops import mfu
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import distributed
from scratchllm.train.optim import make_optimizer
from scratchllm.train.pipeline import Pipeline
from scratchllm.train.health import SpikeDetector
from scratchllm.train.saver import RunSaver
from scratchllm.train.run_info import collect_run_info, set_status, write_run_info
from scratchllm.train.schedule import lr_at
from scratchllm.train.signals import StopOnSignal
from scratchllm.train.step import accumulate_gradients, evaluate, next_token_loss, to_device
from scratchllm.train.trackers import open_trackers
from scratchllm.train.tracking import MetricsLog, device_peak_flops, peak_memory_mb
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.device import resolve_device


@dataclass
class TrainResult:
    step: int
    tokens: int
    wall_s: float
    interrupted: bool
    final: dict[str, Any] = field(default_factory=dict)  # the last metrics.jsonl record
    skipped_steps: int = 0  # updates dropped for a non-finite loss or gradient (train.nonfinite=skip)


class _Trainer:
    def __init__(self, model, cfg, batches, out_dir, loss_fn, val_batches, tokens_per_byte, optimizer=None,
                 sample=None, trackers=()):
        self.cfg, self.tc = cfg, cfg.train
        self.batches = batches
        self.val_batches = list(val_batches) if val_batches is not None else None
        self.tokens_per_byte = tokens_per_byte
        self.out_dir = Path(out_dir)
        self.device = distributed.device_for_rank(resolve_device(self.tc.device))
        self.raw = ckpt.unwrap(model).to(self.device)
        self.raw.train()
        # The module the step runs through: under torchrun a DDP wrapper or the FSDP2-sharded
        # model itself; checkpoints always read `self.raw`, whose parameter names carry no prefix.
        self.model = self.raw
        self.world = distributed.World(getattr(cfg, "parallel", None))  # finetune's and DPO's configs have none
        self.no_sync = self.pipeline = None
        if self.world.size > 1:
            pc = cfg.parallel
            if optimizer is not None and (pc.dp == "fsdp" or pc.tp > 1 or pc.pp > 1):
                raise UserError("parallel.dp=fsdp, parallel.tp and parallel.pp build their optimizer over this rank's "
                                "parameters; use parallel.dp=ddp with a custom optimizer")
            distributed.check_layout(pc, self.raw.config, self.tc.grad_accum, self.tc.optimizer)
            if pc.pp > 1:
                if loss_fn is not next_token_loss or self.tc.sample_every:
                    raise UserError("parallel.pp trains with the next-token loss and without samples; "
                                    "use parallel.dp for other losses, or set train.sample_every=0")
                self.pipeline = Pipeline(self.raw, pc, self.tc.grad_accum, self.device)
                self.model = self.pipeline.module  # the optimizer steps this stage's parameters only
            else:
                self.model, self.no_sync = distributed.wrap(self.raw, pc, self.device), distributed.no_sync
            # after the (identical) init: dropout differs per data rank (a tp replica shares its masks)
            ckpt.seed_everything(self.tc.seed + self.world.data_rank)
        if self.tc.gradient_checkpointing:
            self.raw.gradient_checkpointing = self.tc.checkpoint_blocks_every
        self.optimizer = optimizer or make_optimizer(self.pipeline.module if self.pipeline else self.raw, self.tc,
                                                     self.device.type)
        self.saver = RunSaver(out_dir, self.tc, getattr(cfg, "parallel", None), self.world, self.pipeline)
        # Compile the loss *with* the model in one graph: the cross-entropy then fuses with the
        # lm_head output instead of materializing fp32 logits.
        self.loss = torch.compile(loss_fn) if self.tc.compile else loss_fn
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self.step = self.tokens = 0
        self.unsynced_tokens: Any = 0   # counted on the device since the last read (no sync per step)
        self.seconds_before = 0.0  # training time of earlier segments of a resumed run
        self.started = time.perf_counter()
        self.lr = 0.0
        self.peak = device_peak_flops(self.device)
        self.sample, self.trackers = sample, list(trackers)
        self.spikes = SpikeDetector(self.tc.spike_factor)
        self.skipped = 0
        self.skips_on_device: Any = 0   # skipped updates not yet read back (the fused kernel's own skip)
        self.last_val: tuple[int, float] | None = None  # (step, val_loss) of the newest validation

    def restore(self) -> None:
        """Continue from the newest checkpoint: weights, optimizer, RNGs, loader position."""
        found = ckpt.find_checkpoint(self.out_dir)
        self.saver.load(found, self.raw, self.optimizer, self.device)
        # Each rank takes its own RNG and loader state when the world size is the one that saved.
        own = self.world.rank if len(found.state.get("ranks", [])) == self.world.size else None
        state = found.state["ranks"][own] if own is not None else found.state
        ckpt.set_rng_state(state["rng"])
        if "loader" in state and hasattr(self.batches, "load_state_dict"):
            self.batches.load_state_dict(state["loader"])
        self.step, self.tokens = found.step, found.state.get("tokens", 0)
        self.seconds_before = found.state.get("train_seconds", 0.0)
        if self.world.is_main:
            self.metrics.truncate_after(self.step)
            tqdm.write(f"resumed from {found.path} (step {self.step}, {self.tokens:,} tokens)")

    def sync_tokens(self) -> int:
        """Fold the device-side token count into `self.tokens` (one host sync)."""
        if self.world.size > 1:  # the tp ranks of a replica count the same rows
            self.unsynced_tokens = distributed.all_sum(self.unsynced_tokens) / self.world.replicas
        self.tokens += int(self.unsynced_tokens)
        self.unsynced_tokens = 0
        return self.tokens

    def save(self, final: bool = True) -> Path:
        self.sync_tokens()
        state = {"tokens": self.tokens, "rng": ckpt.rng_state(), "train_seconds": self.seconds()}
        if hasattr(self.batches, "state_dict"):
            state["loader"] = self.batches.state_dict()
        if self.last_val and self.last_val[0] == self.step:
            state["val_loss"] = self.last_val[1]  # what keep_best ranks checkpoints by
        return self.saver.save(self.step, self.raw, self.optimizer, state, final)

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def time_frac(self) -> float:
        """Fraction of the time budget used (0 without one)."""
        return self.seconds() / (60 * self.tc.max_minutes) if self.tc.max_minutes else 0.0

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, Any, dict]:
        """One optimizer step over grad_accum micro-batches: (mean loss, grad norm, tokens, metrics)."""
        self.lr = lr_at(self.step, self.tc, self.time_frac())
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_mult", 1.0)
        micro = [to_device(next(self.batches), self.device) for _ in range(self.tc.grad_accum)]
        metrics: dict[str, Any] = {}
        clip = self.tc.grad_clip if self.tc.grad_clip > 0 else math.inf
        if self.pipeline:  # the micro-batches flow through the stages; the rest of the step is the same
            loss, n_tokens = self.pipeline.step(micro)
            grad_norm = self.pipeline.clip_grad_norm_(clip)
        else:
            loss = accumulate_gradients(self.model, micro, self.loss, self.device, self.tc.dtype, report=metrics,
                                        no_sync=self.no_sync)
            n_tokens = metrics.pop("tokens")
            grad_norm = distributed.clip_grad_norm_(self.raw.parameters(), clip)
        if self.tc.nonfinite == "skip" and self.optimizer.defaults.get("fused") and not distributed.is_sharded(self.raw):
            # No host sync: the fused AdamW kernel drops the update itself where found_inf is 1 (as it
            # does for GradScaler); the count is read back with the next metrics line.
            found_inf = (~(torch.isfinite(loss) & torch.isfinite(grad_norm))).float()
            self.optimizer.found_inf = found_inf
            self.optimizer.step()
            self.skips_on_device = self.skips_on_device + found_inf
        elif self.finite(loss, grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.unsynced_tokens = self.unsynced_tokens + n_tokens
        return loss, grad_norm, n_tokens, metrics

    def finite(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
        """Whether this update may be applied (one host sync a step). A non-finite loss or gradient
        is dropped (nonfinite=skip), or saves the run as it was before it and stops (nonfinite=stop)."""
        if bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
            return True
        if self.tc.nonfinite == "stop":
            self.optimizer.zero_grad(set_to_none=True)
            path = self.save()
            if self.world.is_main:
                set_status(self.out_dir, "stopped", reason=f"non-finite loss or gradient at step {self.step + 1}")
            raise UserError(f"the loss or gradient became non-finite at step {self.step + 1}; the run before it is "
                            f"saved in {path}: lower train.max_lr or raise train.warmup_steps, then --resume "
                            "(or set train.nonfinite=skip to drop such steps)")
        self.skipped += 1
        tqdm.write(f"step {self.step + 1}: non-finite loss or gradient, update skipped ({self.skipped} so far)")
        return False

    def read_skips(self) -> None:
        """Add the updates the fused kernel skipped since the last read to `skipped` (a host sync)."""
        new = int(self.skips_on_device)
        self.skips_on_device = 0
        if new:
            self.skipped += new
            tqdm.write(f"steps up to {self.step}: {new} non-finite update(s) skipped ({self.skipped} so far)")

    def write_sample(self) -> None:
        """Text from the model now (the caller's `sample` callable), appended to samples.jsonl."""
        was_training = self.raw.training
        self.raw.eval()
        # subtle: sampling draws random numbers; forked, the run's own stream (dropout, resume) is untouched
        with torch.no_grad(), torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            text = self.sample(self.raw)
        self.raw.train(was_training)
        if not self.world.is_main:
            return
        with open(self.out_dir / "samples.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": self.step, "text": text}) + "\n")
        for tracker in self.trackers:
            tracker.text("sample", self.step, text)

    def validate(self) -> dict[str, float]:
        if not self.val_batches:
            return {}
        if self.pipeline:
            scores = self.pipeline.evaluate(self.val_batches, self.device)
        else:
            scores = evaluate(self.model, self.val_batches, self.loss, self.device, self.tc.dtype)
        out = {f"val_{name}": value for name, value in scores.items()}
        if self.tokens_per_byte:
            out["val_bpb"] = out["val_loss"] / math.log(2) * self.tokens_per_byte
        return out

    def _rates(self, tokens: int, seconds: float, seq_len: int) -> dict[str, float]:
        tok_s = tokens / max(seconds, 1e-9)
        out = {"tokens_per_s": tok_s, "peak_mem_mb": peak_memory_mb(self.device)}
        if self.peak and hasattr(self.raw, "flops_per_token"):
            out["mfu"] = mfu(self.raw.flops_per_token(seq_len), tok_s, self.peak)
        return out

    def run(self) -> TrainResult:
        tc = self.tc
        self.started = time.perf_counter()
        bar = tqdm(total=tc.max_steps, initial=self.step, disable=not tc.progress or not self.world.is_main, unit="step", dynamic_ncols=True)
        record: dict[str, Any] = {}
        interval = _Interval()
        with StopOnSignal() as stop:
            last = self.step >= tc.max_steps
            while not last and not stop.requested:
                loss, grad_norm, n_tokens, metrics = self.train_step()
                interval.add(loss, n_tokens, metrics)
                bar.update(1)
                last = self.step >= tc.max_steps or self.time_frac() >= 1 or 0 < tc.stop_after <= self.step
                do_eval = last or (tc.eval_every and self.step % tc.eval_every == 0)
                if not self.step % tc.log_every or do_eval or last:
                    record = self.log(interval, grad_norm, do_eval, bar)
                    interval = _Interval()
                if self.sample and tc.sample_every and (self.step % tc.sample_every == 0 or last):
                    self.write_sample()
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0 and not last:
                    self.save(final=False)
        bar.close()
        self.read_skips()
        self.save()
        wall = time.perf_counter() - self.started
        interrupted = stop.requested and not last
        if interrupted:
            tqdm.write(f"stopped at step {self.step}; continue with --resume")
        elif self.step < tc.max_steps and not 0 < tc.stop_after <= self.step:
            tqdm.write(f"time budget of {tc.max_minutes:g} min reached at step {self.step} of {tc.max_steps}")
        if self.world.is_main:
            set_status(self.out_dir, "interrupted" if interrupted else "done", step=self.step)
        return TrainResult(self.step, self.tokens, wall, interrupted, record, self.skipped)

    def log(self, interval: "_Interval", grad_norm: torch.Tensor, do_eval: bool, bar) -> dict[str, Any]:
        """Write one metrics.jsonl line for the steps since the last one (the only host sync)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - interval.t0
        if self.world.size > 1:
            interval.reduce_over_ranks(self.world)
        tokens = int(interval.tokens)
        record = {"step": self.step, "tokens": self.sync_tokens(), "loss": interval.mean_loss(),
                  "lr": self.lr, "grad_norm": float(grad_norm), **interval.mean_metrics(),
                  **self._rates(tokens, seconds, self.cfg.model.block_size)}
        if do_eval:
            record.update(self.validate())
            if "val_loss" in record:
                self.last_val = (self.step, record["val_loss"])
        self.read_skips()
        if self.skipped:
            record["skipped_steps"] = self.skipped
        if spikes := self.spikes.check(record):
            record["spike"] = spikes
            tqdm.write(f"step {self.step}: spike in {' and '.join(spikes)} "
                       f"(loss {record['loss']:.3f}, grad norm {record['grad_norm']:.3f})")
        if self.world.is_main:
            self.metrics.write(record)
            for tracker in self.trackers:
                tracker.log(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:,.0f}",
                        **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
        return record


class _Interval:
    """Sums over the steps between two log lines, kept on the device until they are logged."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.steps, self.loss, self.tokens = 0, 0.0, 0
        self.metrics: dict[str, Any] = {}

    def add(self, loss, tokens, metrics: dict) -> None:
        self.steps += 1
        self.loss = self.loss + loss
        self.tokens = self.tokens + tokens
        for name, value in metrics.items():
            self.metrics[name] = self.metrics.get(name, 0.0) + value

    def reduce_over_ranks(self, world: distributed.World) -> None:
        """Sums over all ranks: the logged loss and metrics are the global batch's, tokens all data ranks'."""
        self.loss = distributed.all_sum(self.loss) / world.size
        self.tokens = distributed.all_sum(self.tokens) / world.replicas
        self.metrics = {k: distributed.all_sum(v) / world.size for k, v in self.metrics.items()}

    def mean_loss(self) -> float:
        return float(self.loss) / max(self.steps, 1)

    def mean_metrics(self) -> dict[str, float]:
        return {name: float(total) / max(self.steps, 1) for name, total in self.metrics.items()}


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """A new run needs a directory without checkpoints; a resumed one needs one with them."""
    has_run = bool(ckpt.list_steps(out_dir))
    if has_run and not resume:
        raise UserError(f"'{out_dir}' already holds a training run; pass --resume to continue it or choose another --out")
    if resume and not has_run:
        raise UserError(f"nothing to resume in '{out_dir}' (no checkpoints); drop --resume to start a new run")


def train(model: torch.nn.Module, cfg, batches, out_dir: str | Path, *, loss_fn: Callable = next_token_loss,
          val_batches: Iterable | None = None, tokens_per_byte: float | None = None, resume: bool = False,
          quiet: bool = False, optimizer: torch.optim.Optimizer | None = None,
          sample: Callable[[torch.nn.Module], str] | None = None, manifest: str | Path | None = None) -> TrainResult:
    """Train `model` in place per `cfg.train` (cfg: a RunConfig-like dataclass); see the module docstring.

    Writes `out_dir/config.toml`, `metrics.jsonl` and `checkpoints/`. With `resume`, continues
    the newest checkpoint in `out_dir` exactly (same batches, same random numbers).
    `optimizer` replaces the default AdamW groups of `make_optimizer` (built over the model's
    parameters, already on the training device); its groups may carry `lr_mult`.
    `sample(model) -> text` (the caller's, e.g. through the inference engine: train/ is below it)
    runs every `train.sample_every` steps into samples.jsonl. `manifest`: the data's manifest file
    (a token directory's meta.json), hashed into run_info.json with the git state and versions.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    text = dumps_toml(cfg)
    main = distributed.World().is_main  # under torchrun only rank 0 writes and prints
    out_dir.mkdir(parents=True, exist_ok=True)
    if main:
        atomic_write_text(out_dir / "config.toml", text)
    if not quiet and main:
        tqdm.write(f"# resolved config (saved to {out_dir / 'config.toml'})\n{text}")
    ckpt.seed_everything(cfg.train.seed)
    info = collect_run_info(cfg.train.seed, str(resolve_device(cfg.train.device)), manifest)
    track = getattr(cfg, "track", None)  # finetune's and DPO's configs may not carry a [track] table
    trackers = []
    if main:
        write_run_info(out_dir, info)
        trackers = open_trackers(track.backends if track else "jsonl", out_dir, info)
    trainer = _Trainer(model, cfg, batches, out_dir, loss_fn, val_batches, tokens_per_byte, optimizer,
                       sample, trackers)
    if resume:
        trainer.restore()
    elif main and (out_dir / "metrics.jsonl").exists():
        (out_dir / "metrics.jsonl").unlink()  # a previous attempt that never saved a checkpoint
    try:
        return trainer.run()
    finally:
        for tracker in trackers:
            tracker.close()
