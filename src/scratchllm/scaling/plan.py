"""Compute-optimal sizing: how big a model, on how many tokens, for a FLOP budget — and how long.

From a fitted law (the user's `fit.json`) or a published one, `plan` takes the closed-form optimum
of `ScalingLaw.optimal`, the loss the law predicts there, the model depth (`model.depth` dial)
whose parameter count is nearest, and the wall time at a measured tokens/s.

>>> p = plan(1e21, law_name="besiroglu")
>>> f"{p['params']:.2e}", round(p["tokens_per_param"])
('2.78e+09', 22)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.scaling.laws import PUBLISHED, ScalingLaw, format_duration, training_seconds


def read_fit(path: str | Path) -> ScalingLaw:
    """The law in a fit.json (or in DIR/fit.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / "fit.json"
    if not path.is_file():
        raise UserError(f"no fit at '{path}'; make one with `scratchllm scaling fit SWEEP_DIR --out {path}`")
    try:
        law = json.loads(path.read_text(encoding="utf-8"))["law"]
        return ScalingLaw(**{k: float(law[k]) for k in ("E", "A", "B", "alpha", "beta")})
    except (ValueError, KeyError, TypeError):
        raise UserError(f"'{path}' is not a fit.json written by `scratchllm scaling fit`; refit it") from None


def nearest_depth(params: float, base: ModelConfig, max_depth: int = 64) -> int:
    """The `model.depth` whose matmul parameter count is closest to `params` (log distance)."""
    def count(depth: int) -> int:
        with torch.device("meta"):
            return Transformer(ModelConfig(**{**base.__dict__, "depth": depth}).sized()).matmul_params()
    return min(range(1, max_depth + 1), key=lambda d: abs(math.log(count(d) / params)))


def plan(flops: float, law: ScalingLaw | None = None, law_name: str = "chinchilla",
         tokens_per_s: float | None = None, base: ModelConfig | None = None) -> dict:
    """The compute-optimal (N, D) at `flops` and what follows from it."""
    if flops <= 0:
        raise UserError(f"--flops must be positive, got {flops}")
    if law is None:
        if law_name not in PUBLISHED:
            raise UserError(f"unknown published law '{law_name}'; choose one of {sorted(PUBLISHED)}")
        law = PUBLISHED[law_name]
    params, tokens = law.optimal(flops)
    out = {"flops": flops, "params": params, "tokens": tokens, "tokens_per_param": tokens / params,
           "predicted_loss": law.loss(params, tokens), "law": law.as_dict()}
    if base is not None:
        out["depth"] = nearest_depth(params, base)
    if tokens_per_s:
        out["seconds"] = training_seconds(tokens, tokens_per_s)
        out["duration"] = format_duration(out["seconds"])
    return out
