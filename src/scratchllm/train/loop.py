"""The one training loop. Pretraining, SFT, DPO and reward models differ in batches and loss only.

    train(model, cfg, batches, out_dir, loss_fn=next_token_loss, val_batches=...)

- `batches`: an iterator of batches (any nesting of tensors); if it has `state_dict()` /
  `load_state_dict()` (like `TokenLoader`) its position is checkpointed for exact resume.
- `loss_fn(model, batch) -> scalar`: the mean loss of one micro-batch. The default is
  next-token cross-entropy on `(inputs, targets)`; targets equal to -100 are ignored (masks).
- `val_batches`: a fixed list of batches, scored every `eval_every` steps and at the end, so
  every validation of a run (and of runs on the same data) sees the same tokens.

One optimizer step = `grad_accum` micro-batches whose losses are each divided by
`grad_accum` before backward, so the summed gradient is the gradient of the mean loss
over all of them: k micro-batches of b rows give the same update as one batch of k·b rows.
On CUDA the forward runs under bf16 autocast (weights and optimizer stay fp32); then the
gradient norm is clipped, the learning rate set from the schedule, and AdamW steps.

>>> from scratchllm.train.config import RunConfig          # doctest: +SKIP
>>> train(model, RunConfig(), TokenLoader(...), "runs/x")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from scratchllm.config import dumps_toml
from scratchllm.errors import UserError
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.optim import make_optimizer
from scratchllm.train.schedule import lr_at
from scratchllm.train.tracking import MetricsLog, device_peak_flops, peak_memory_mb
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.device import resolve_device


def next_token_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """Mean cross-entropy of predicting `targets` from `inputs` (nats per token); -100 = ignored."""
    inputs, targets = batch
    logits = model(inputs)
    # subtle: the softmax in fp32 even under bf16 autocast; low-precision log-sum-exp loses the loss's tail.
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)


def autocast(device: torch.device, dtype: str):
    """bf16 autocast on CUDA ("auto") or when asked; fp32 (no autocast) otherwise."""
    if dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def batch_tokens(batch) -> int:
    """Tokens in a batch: the size of its first tensor (the inputs)."""
    if isinstance(batch, torch.Tensor):
        return batch.numel()
    items = batch.values() if isinstance(batch, dict) else batch
    return next(batch_tokens(b) for b in items if isinstance(b, (torch.Tensor, list, tuple, dict)))


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn: Callable,
                         device: torch.device, dtype: str = "auto") -> torch.Tensor:
    """Backward over micro-batches, each loss divided by their number; returns the mean loss (detached).

    The gradients summed in `.grad` are then those of the mean loss over all micro-batches:
    k micro-batches of b rows equal one batch of k·b rows (for equal-sized micro-batches).
    """
    total = torch.zeros((), device=device)
    for batch in micro_batches:
        with autocast(device, dtype):
            loss = loss_fn(model, batch) / len(micro_batches)
        loss.backward()
        total += loss.detach()
    return total


@torch.no_grad()
def evaluate(model: torch.nn.Module, val_batches: Iterable, loss_fn: Callable, device: torch.device,
             dtype: str = "auto") -> float:
    """Token-weighted mean loss over fixed validation batches (model in eval mode meanwhile)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in val_batches:
        batch = to_device(batch, device)
        with autocast(device, dtype):
            loss = loss_fn(model, batch)
        n = batch_tokens(batch)
        total += loss.item() * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


@dataclass
class TrainResult:
    step: int
    tokens: int
    wall_s: float
    interrupted: bool
    final: dict[str, Any] = field(default_factory=dict)  # the last metrics.jsonl record


class _StopOnSigint:
    """First Ctrl-C asks the loop to save and stop after the current step; a second one kills."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        tqdm.write("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _Trainer:
    def __init__(self, model, cfg, batches, out_dir, loss_fn, val_batches, tokens_per_byte):
        self.cfg, self.tc = cfg, cfg.train
        self.batches = batches
        self.val_batches = list(val_batches) if val_batches is not None else None
        self.tokens_per_byte = tokens_per_byte
        self.out_dir = Path(out_dir)
        self.device = resolve_device(self.tc.device)
        self.raw = ckpt.unwrap(model).to(self.device)
        self.raw.train()
        if self.tc.gradient_checkpointing:
            self.raw.gradient_checkpointing = True
        self.optimizer = make_optimizer(self.raw, self.tc, self.device.type)
        # Compile the loss *with* the model in one graph: the cross-entropy then fuses with the
        # lm_head output instead of materializing fp32 logits.
        self.loss = torch.compile(loss_fn) if self.tc.compile else loss_fn
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self.step = self.tokens = 0
        self.seconds_before = 0.0  # training time of earlier segments of a resumed run
        self.started = time.perf_counter()
        self.lr = 0.0
        self.peak = device_peak_flops(self.device)

    def restore(self) -> None:
        """Continue from the newest checkpoint: weights, optimizer, RNGs, loader position."""
        found = ckpt.find_checkpoint(self.out_dir)
        ckpt.load_weights(self.raw, found, self.device)
        ckpt.load_optimizer(self.optimizer, found, self.device)
        ckpt.set_rng_state(found.state["rng"])
        if "loader" in found.state and hasattr(self.batches, "load_state_dict"):
            self.batches.load_state_dict(found.state["loader"])
        self.step, self.tokens = found.step, found.state.get("tokens", 0)
        self.seconds_before = found.state.get("train_seconds", 0.0)
        self.metrics.truncate_after(self.step)
        tqdm.write(f"resumed from {found.path} (step {self.step}, {self.tokens:,} tokens)")

    def save(self) -> Path:
        state = {"tokens": self.tokens, "rng": ckpt.rng_state(), "train_seconds": self.seconds()}
        if hasattr(self.batches, "state_dict"):
            state["loader"] = self.batches.state_dict()
        return ckpt.save_checkpoint(self.out_dir, self.step, self.raw, self.optimizer, state,
                                    keep=self.tc.keep_checkpoints)

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def time_frac(self) -> float:
        """Fraction of the time budget used (0 without one)."""
        return self.seconds() / (60 * self.tc.max_minutes) if self.tc.max_minutes else 0.0

    def train_step(self) -> tuple[torch.Tensor, float, int]:
        """One optimizer step over grad_accum micro-batches: (mean loss, grad norm, tokens)."""
        self.lr = lr_at(self.step, self.tc, self.time_frac())
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        micro = [to_device(next(self.batches), self.device) for _ in range(self.tc.grad_accum)]
        loss_sum = accumulate_gradients(self.raw, micro, self.loss, self.device, self.tc.dtype)
        n_tokens = sum(batch_tokens(b) for b in micro)
        clip = self.tc.grad_clip if self.tc.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw.parameters(), clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += n_tokens
        return loss_sum, grad_norm, n_tokens

    def validate(self) -> dict[str, float]:
        if not self.val_batches:
            return {}
        val_loss = evaluate(self.raw, self.val_batches, self.loss, self.device, self.tc.dtype)
        out = {"val_loss": val_loss}
        if self.tokens_per_byte:
            out["val_bpb"] = val_loss / math.log(2) * self.tokens_per_byte
        return out

    def _rates(self, tokens: int, seconds: float, seq_len: int) -> dict[str, float]:
        tok_s = tokens / max(seconds, 1e-9)
        out = {"tokens_per_s": tok_s, "peak_mem_mb": peak_memory_mb(self.device)}
        if self.peak and hasattr(self.raw, "flops_per_token"):
            out["mfu"] = self.raw.flops_per_token(seq_len) * tok_s / self.peak
        return out

    def run(self) -> TrainResult:
        tc = self.tc
        self.started = time.perf_counter()
        bar = tqdm(total=tc.max_steps, initial=self.step, disable=not tc.progress, unit="step", dynamic_ncols=True)
        record: dict[str, Any] = {}
        interval_loss, interval_steps, interval_tokens, t0 = 0.0, 0, 0, time.perf_counter()
        with _StopOnSigint() as stop:
            last = self.step >= tc.max_steps
            while not last and not stop.requested:
                loss, grad_norm, n = self.train_step()
                interval_loss, interval_steps, interval_tokens = interval_loss + loss, interval_steps + 1, interval_tokens + n
                bar.update(1)
                last = self.step >= tc.max_steps or self.time_frac() >= 1
                do_eval = last or (tc.eval_every and self.step % tc.eval_every == 0)
                if self.step % tc.log_every and not do_eval and not last:
                    continue
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                record = {"step": self.step, "tokens": self.tokens, "loss": float(interval_loss) / interval_steps,
                          "lr": self.lr, "grad_norm": float(grad_norm),
                          **self._rates(interval_tokens, seconds, self.cfg.model.block_size)}
                if do_eval:
                    record.update(self.validate())
                self.metrics.write(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:,.0f}",
                                **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0 and not last:
                    self.save()
                interval_loss, interval_steps, interval_tokens, t0 = 0.0, 0, 0, time.perf_counter()
        bar.close()
        self.save()
        wall = time.perf_counter() - self.started
        interrupted = stop.requested and not last
        if interrupted:
            tqdm.write(f"stopped at step {self.step}; continue with --resume")
        elif self.step < tc.max_steps:
            tqdm.write(f"time budget of {tc.max_minutes:g} min reached at step {self.step} of {tc.max_steps}")
        return TrainResult(self.step, self.tokens, wall, interrupted, record)


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """A new run needs a directory without checkpoints; a resumed one needs one with them."""
    has_run = bool(ckpt.list_steps(out_dir))
    if has_run and not resume:
        raise UserError(f"'{out_dir}' already holds a training run; pass --resume to continue it or choose another --out")
    if resume and not has_run:
        raise UserError(f"nothing to resume in '{out_dir}' (no checkpoints); drop --resume to start a new run")


def train(model: torch.nn.Module, cfg, batches, out_dir: str | Path, *, loss_fn: Callable = next_token_loss,
          val_batches: Iterable | None = None, tokens_per_byte: float | None = None, resume: bool = False,
          quiet: bool = False) -> TrainResult:
    """Train `model` in place per `cfg.train` (cfg: a RunConfig-like dataclass); see the module docstring.

    Writes `out_dir/config.toml`, `metrics.jsonl` and `checkpoints/`. With `resume`, continues
    the newest checkpoint in `out_dir` exactly (same batches, same random numbers).
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    text = dumps_toml(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.toml", text)
    if not quiet:
        tqdm.write(f"# resolved config (saved to {out_dir / 'config.toml'})\n{text}")
    ckpt.seed_everything(cfg.train.seed)
    trainer = _Trainer(model, cfg, batches, out_dir, loss_fn, val_batches, tokens_per_byte)
    if resume:
        trainer.restore()
    elif (out_dir / "metrics.jsonl").exists():
        (out_dir / "metrics.jsonl").unlink()  # a previous attempt that never saved a checkpoint
    return trainer.run()
