"""Reproduce a run: train it again from its recorded config and data, and say whether the losses match.

`reproduce(run, out, steps)` reads `run/config.toml`, points the data at the run's own token
directory (`run/tokens`, or the token directory the config names), checks that the data
manifest hashes as recorded in `run_info.json`, and trains `out` for the first `steps` steps
under the *same* schedule (`train.stop_after`: the learning rate at step k depends on
max_steps). Then it compares every logged `loss`/`val_loss` of the two runs: on CPU the
float32 arithmetic is deterministic, so they must be equal bit for bit; on a GPU atomics
and kernel choices differ between runs, so a relative tolerance is reported instead (see
docs/reproducibility.md).

>>> compare_losses([{"step": 1, "loss": 2.5}], [{"step": 1, "loss": 2.5}], tolerance=0.0)["match"]
True
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from scratchllm.errors import UserError
from scratchllm.train.config import load_run_config
from scratchllm.train.pretrain import pretrain
from scratchllm.train.run_info import file_sha256, read_run_info
from scratchllm.train.tracking import read_metrics
from scratchllm.utils.device import resolve_device

GPU_TOLERANCE = 2e-2  # relative: bf16 autocast + non-deterministic reductions drift by ~1e-3..1e-2 over a run
COMPARED = ("loss", "val_loss")


def determinism(device: torch.device) -> dict[str, Any]:
    """Switch on what PyTorch offers for repeatable results on `device`; returns what was set."""
    settings: dict[str, Any] = {"torch.use_deterministic_algorithms": True}
    if device.type == "cuda":
        # cuBLAS needs a fixed workspace to be deterministic; set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        settings.update(CUBLAS_WORKSPACE_CONFIG=os.environ["CUBLAS_WORKSPACE_CONFIG"], cudnn_benchmark=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return settings


def compare_losses(original: list[dict], again: list[dict], tolerance: float) -> dict[str, Any]:
    """Match the two runs' losses step by step: bitwise (tolerance 0) or within a relative tolerance."""
    by_step = {r["step"]: r for r in original}
    compared, worst = 0, 0.0
    for r in again:
        o = by_step.get(r["step"])
        for key in COMPARED:
            if o is None or o.get(key) is None or r.get(key) is None:
                continue
            compared += 1
            worst = max(worst, abs(o[key] - r[key]) / max(abs(o[key]), 1e-12))
    match = compared > 0 and (worst == 0.0 if tolerance == 0 else worst <= tolerance)
    return {"compared": compared, "max_rel_diff": worst, "tolerance": tolerance, "match": match}


def _token_dir(run: Path, data_path: str) -> Path:
    if (run / "tokens" / "meta.json").is_file():
        return run / "tokens"
    if data_path and (Path(data_path) / "meta.json").is_file():
        return Path(data_path)
    raise UserError(f"'{run}' keeps no token directory (tokens/meta.json) and its data.path is not one; "
                    "reproduce needs the exact tokens the run trained on")


def reproduce(run: str | Path, out: str | Path, steps: int | None = None, force: bool = False) -> dict[str, Any]:
    """Train `out` as `run` was trained (its first `steps` steps) and compare; returns the report."""
    run = Path(run)
    cfg = load_run_config(run)
    token_dir = _token_dir(run, cfg.data.path)
    recorded = read_run_info(run).get("data_manifest_sha256")
    if recorded and file_sha256(token_dir / "meta.json") != recorded:
        raise UserError(f"the tokens in '{token_dir}' are not those '{run}' trained on (manifest hash differs); "
                        "restore them or reproduce from a copy of the run")
    original = read_metrics(run / "metrics.jsonl")
    done = max((r["step"] for r in original), default=0)
    steps = min(steps or done, done)
    train_cfg = dataclasses.replace(cfg.train, stop_after=steps if steps < cfg.train.max_steps else 0, progress=False)
    cfg = dataclasses.replace(cfg, train=train_cfg, data=dataclasses.replace(cfg.data, path=str(token_dir)))
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:  # a process-wide switch: put back as found (reproduce may be called from Python, not only the CLI)
        settings = determinism(resolve_device(cfg.train.device))
        result, _, _, _ = pretrain(cfg, out, progress=False, quiet=True, force=force)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    again = read_metrics(Path(out) / "metrics.jsonl")
    device = resolve_device(cfg.train.device)
    report = compare_losses([r for r in original if r["step"] <= steps], again,
                            0.0 if device.type == "cpu" else GPU_TOLERANCE)
    if cfg.train.max_minutes:
        # the schedule follows the wall clock under a time budget: no two runs see the same learning rates
        report["note"] = "train.max_minutes > 0: the learning rate followed the wall clock, so no bitwise match"
    return {**report, "steps": result.step, "device": str(device), "determinism": settings}
