"""Health of long runs: spike detection and the checkpoint retention policy.

The loop asks two questions here and knows the answers' consequences itself:

- `SpikeDetector.check(record)`: which of a log line's `loss` / `grad_norm` exceed
  `factor` times their running mean (an exponential average over earlier log lines, after a
  few lines of warm-up), so a run's log says *where* it went wrong, not only that it did.
- `steps_to_keep(...)`: which checkpoint steps survive a save: the newest `last`, every
  multiple of `every`, and the one with the lowest recorded `val_loss` (`best`).
  The newest is always among them (a resume continues it).

>>> d = SpikeDetector(factor=3.0, warmup=2)
>>> [d.check({"loss": x}) for x in (2.0, 2.0, 2.1, 9.0, 2.0)]
[[], [], [], ['loss'], []]
>>> sorted(steps_to_keep([10, 20, 30, 40, 50], last=2, every=20, val_loss={10: 1.5, 30: 1.2}))
[20, 30, 40, 50]
"""

from __future__ import annotations

import math
from typing import Any

WATCHED = ("loss", "grad_norm")


class SpikeDetector:
    """Flags a watched value above `factor` x its running mean; the spike itself is not averaged in."""

    def __init__(self, factor: float, warmup: int = 5, decay: float = 0.9):
        self.factor, self.warmup, self.decay = factor, warmup, decay
        self.mean: dict[str, float] = {}
        self.seen = 0

    def check(self, record: dict[str, Any]) -> list[str]:
        if self.factor <= 0:
            return []
        spikes = []
        for name in WATCHED:
            value = record.get(name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            mean = self.mean.get(name)
            if mean is not None and self.seen >= self.warmup and value > self.factor * mean:
                spikes.append(name)
                continue  # subtle: averaging the spike in would hide the next one
            self.mean[name] = value if mean is None else self.decay * mean + (1 - self.decay) * value
        self.seen += 1
        return spikes


def steps_to_keep(steps: list[int], last: int, every: int = 0, val_loss: dict[int, float] | None = None) -> set[int]:
    """The checkpoint steps a retention policy keeps (see the module docstring)."""
    keep = set(sorted(steps)[-last:]) if last else set()
    if every:
        keep |= {s for s in steps if s % every == 0}
    if val_loss:
        keep.add(min(val_loss, key=val_loss.get))
    return keep
