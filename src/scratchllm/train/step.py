"""One optimizer step's pieces: the micro-batch loss, gradient accumulation, counting tokens, validation.

`train/loop.py` drives steps, schedules, checkpoints and logs; this file knows what one step does
to a model and nothing of runs, files or time.

- `next_token_loss(model, (inputs, targets))`: the default loss, mean cross-entropy; -100 = ignored.
- A loss function may return `loss` or `(loss, metrics)`; `split_loss` reads either.
- `batch_tokens(batch)`: the tokens that count (targets other than -100), without a host sync.
- `accumulate_gradients`: backward over k micro-batches as one batch of k times the rows.
- `evaluate`: token-weighted mean loss and metrics over fixed validation batches.

>>> import torch
>>> x = torch.zeros(1, 4, dtype=torch.long); y = torch.tensor([[1, -100, 2, -100]])
>>> int(batch_tokens((x, y)))
2
>>> split_loss((torch.tensor(1.5), {"acc": 0.5}))
(tensor(1.5000), {'acc': 0.5})
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F


def next_token_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """Mean cross-entropy of predicting `targets` from `inputs` (nats per token); -100 = ignored."""
    inputs, targets = batch
    return token_cross_entropy(model(inputs), targets)


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits [..., V] against targets [...]; -100 = ignored (also the pipeline's loss)."""
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


def _targets(batch):
    """The tensor of targets in a batch: `(inputs, targets, ...)` or a dict's "targets"/"labels"."""
    if isinstance(batch, (list, tuple)) and len(batch) >= 2 and isinstance(batch[1], torch.Tensor):
        return batch[1]
    if isinstance(batch, dict):
        return batch.get("targets", batch.get("labels"))
    return None


def batch_tokens(batch) -> torch.Tensor | int:
    """Tokens that count in a batch: targets other than -100 (padding and masked prompts don't),
    else the size of its first tensor. A tensor (no host sync) when counted from targets."""
    targets = _targets(batch)
    if isinstance(targets, torch.Tensor):
        return (targets != -100).sum()
    if isinstance(batch, torch.Tensor):
        return batch.numel()
    items = batch.values() if isinstance(batch, dict) else batch
    return next(batch_tokens(b) for b in items if isinstance(b, (torch.Tensor, list, tuple, dict)))


def split_loss(out) -> tuple[torch.Tensor, dict[str, Any]]:
    """A loss function's result as (loss, metrics): it may return the loss alone."""
    if isinstance(out, tuple):
        loss, metrics = out
        return loss, dict(metrics)
    return out, {}


def _scalar(value) -> torch.Tensor | float:
    return value.detach().float() if isinstance(value, torch.Tensor) else float(value)


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn: Callable,
                         device: torch.device, dtype: str = "auto",
                         report: dict[str, Any] | None = None, no_sync: Callable | None = None) -> torch.Tensor:
    """Backward over micro-batches, each loss divided by their number; returns the mean loss (detached).

    The gradients summed in `.grad` are then those of the mean loss over all micro-batches:
    k micro-batches of b rows equal one batch of k·b rows (for equal-sized micro-batches).
    If `report` is given it receives the mean of each metric the loss function returned and
    "tokens", the count of tokens that counted, all still on the device (no host sync).
    `no_sync(model)`: a context that defers a distributed wrapper's gradient sync; every
    micro-batch but the last runs under it, so the gradients cross the network once a step.
    """
    total = torch.zeros((), device=device)
    metrics: dict[str, Any] = {}
    tokens: Any = 0
    for i, batch in enumerate(micro_batches):
        defer = no_sync is not None and i < len(micro_batches) - 1
        with no_sync(model) if defer else contextlib.nullcontext():
            with autocast(device, dtype):
                loss, extra = split_loss(loss_fn(model, batch))
            (loss / len(micro_batches)).backward()
        total += loss.detach() / len(micro_batches)
        tokens = tokens + (extra.pop("tokens") if "tokens" in extra else batch_tokens(batch))
        for name, value in extra.items():
            metrics[name] = metrics.get(name, 0.0) + _scalar(value) / len(micro_batches)
    if report is not None:
        report.update(metrics, tokens=tokens)
    return total


@torch.no_grad()
def evaluate(model: torch.nn.Module, val_batches: Iterable, loss_fn: Callable, device: torch.device,
             dtype: str = "auto") -> dict[str, float]:
    """Token-weighted mean loss (and metrics) over fixed validation batches, model in eval mode meanwhile.

    Returns {"loss": ..., **metrics}; the loop logs them as val_loss, val_<metric>.
    """
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in val_batches:
        batch = to_device(batch, device)
        with autocast(device, dtype):
            loss, extra = split_loss(loss_fn(model, batch))
        n = int(extra.pop("tokens") if "tokens" in extra else batch_tokens(batch))
        for name, value in {"loss": loss, **extra}.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        count += n
    model.train(was_training)
    return {name: total / max(count, 1) for name, total in sums.items()}
