"""Learning-rate schedules: linear warmup, then cosine decay, warmup-stable-decay, or constant.

Warmup ramps the rate up from near zero because Adam's moment estimates are noisy in the
first steps and a full-size update then can throw the weights somewhere bad. Cosine decays
smoothly to `min_lr` at the last step (GPT-2, nanoGPT). Warmup-stable-decay (WSD) holds the
peak rate and decays only over the last `decay_frac` of the steps: one long run can be
branched into several shorter ones, and it matches cosine's final loss in practice.

>>> from scratchllm.train.config import TrainConfig
>>> cfg = TrainConfig(max_steps=100, warmup_steps=10, max_lr=1.0, min_lr=0.1)
>>> [round(lr_at(s, cfg), 3) for s in (0, 9, 10, 55, 99)]
[0.1, 1.0, 1.0, 0.542, 0.1]
>>> cfg.schedule = "wsd"; cfg.decay_frac = 0.2
>>> [round(lr_at(s, cfg), 3) for s in (50, 79, 80, 90, 99)]
[1.0, 1.0, 1.0, 0.526, 0.1]
"""

from __future__ import annotations

import math

from scratchllm.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """The learning rate for optimizer step `step` (0-based) of `cfg.max_steps`.

    With a time budget (`train.max_minutes`), `time_frac` is the fraction of it used so far; the
    schedule then runs on whichever clock is further along, so a run cut short by time still
    warms up, decays and ends at min_lr instead of stopping at its peak rate.
    """
    step = max(step, time_frac * cfg.max_steps)
    last = cfg.max_steps - 1
    if step < cfg.warmup_steps:
        return cfg.max_lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant" or last <= cfg.warmup_steps:
        return cfg.max_lr
    if cfg.schedule == "cosine":
        progress = min(1.0, (step - cfg.warmup_steps) / (last - cfg.warmup_steps))
        return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.max_lr - cfg.min_lr)
    # wsd: flat at the peak, then a straight line down to min_lr over the last decay_frac of the run.
    decay_start = max(cfg.warmup_steps, cfg.max_steps - round(cfg.decay_frac * cfg.max_steps))
    if step <= decay_start or last <= decay_start:
        return cfg.max_lr
    progress = min(1.0, (step - decay_start) / (last - decay_start))
    return cfg.max_lr + progress * (cfg.min_lr - cfg.max_lr)
