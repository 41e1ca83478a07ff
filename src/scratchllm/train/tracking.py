"""Metrics of a run: one JSON object per line in `metrics.jsonl`, plus what the hardware did.

Each line is self-contained (`step`, `tokens`, `loss`, `lr`, ... and `val_loss`/`val_bpb`
on evaluation steps), so a crashed run's file is still readable up to its last line, and
plotting is `[json.loads(l) for l in open(path)]`. The last line of a finished run holds the
final figures. On `--resume` the lines after the resumed step are dropped, so the file
describes one unbroken run.

>>> import tempfile, pathlib
>>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl")
>>> log.write({"step": 1, "loss": 2.5}); log.write({"step": 2, "loss": 2.25})
>>> log.truncate_after(1); [r["step"] for r in read_metrics(log.path)]
[1]
"""

from __future__ import annotations

import json
import math
import resource
import sys
from pathlib import Path
from typing import Any

import torch

from scratchllm.model.flops import peak_flops
from scratchllm.utils.atomic import atomic_write_text


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; write null so every line parses everywhere.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Append-only JSONL writer; every line is flushed at once so a crash loses nothing written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({k: _clean(v) for k, v in record.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (they belong to the part of a run a resume replays)."""
        if self.path.exists():
            kept = [json.dumps(r) for r in read_metrics(self.path) if r.get("step", 0) <= step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (a torn last line, from a crash mid-write, is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: allocated tensors on CUDA, the process's max resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # macOS reports bytes, Linux KiB


def device_peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak (for MFU), or None off CUDA or on an unknown GPU."""
    if device.type != "cuda":
        return None
    return peak_flops(torch.cuda.get_device_name(device))
