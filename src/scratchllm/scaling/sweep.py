"""IsoFLOP sweeps: at each compute budget, several model sizes, each trained on C / (FLOPs per token).

    scratchllm scaling sweep --flops 1e13,3e13,1e14 --sizes 2,3,4,5,6 --out runs/sweep

A point is (budget C, depth d). Its model is the preset with `model.depth=d` (one size dial, see
`ModelConfig.sized`); its token budget is D = C / F where F is the model's training FLOPs per token
(6N plus the attention term, `Transformer.flops_per_token`), so small models see many tokens and
large ones few. Every point is an ordinary run directory under OUT (`c1e+13-d4/`), trained by the one
loop on data prepared once (OUT/tokens). `manifest.json` lists the points and their final val loss;
a finished point is never rerun, an interrupted one resumes from its last checkpoint.

The sweep knows nothing of fitting: `scaling/fit.py` reads the manifest's points.

>>> plan = plan_points([1e12, 1e13], [1, 2], "tiny-cpu", ["model.vocab_size=256", "model.block_size=64"])
>>> [(p.name, p.steps > 0) for p in plan]
[('c1e+12-d1', True), ('c1e+12-d2', True), ('c1e+13-d1', True), ('c1e+13-d2', True)]
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import RunConfig, resolve_run_config
from scratchllm.train.pretrain import prepare_data, pretrain
from scratchllm.train.tracking import read_metrics
from scratchllm.utils.atomic import atomic_write_text

MIN_STEPS = 10   # fewer optimizer steps than this is not training; the budget is too small for the size


@dataclass
class Point:
    name: str
    flops: float
    depth: int
    params: int           # matmul parameters N (Transformer.matmul_params)
    tokens: int           # training tokens D = steps · tokens per step ≈ C / F
    steps: int
    val_loss: float | None = None


def _point_config(preset: str, overrides: list[str], depth: int, vocab_size: int | None = None) -> RunConfig:
    cfg = resolve_run_config(preset, [*overrides, f"model.depth={depth}"])
    if vocab_size is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=vocab_size))
    return cfg


def _shape(cfg: RunConfig) -> tuple[int, int]:
    """(matmul params, training FLOPs per token) of the config's model, without allocating it."""
    with torch.device("meta"):
        model = Transformer(cfg.model)
    return model.matmul_params(), model.flops_per_token(cfg.model.block_size)


def plan_points(budgets: list[float], depths: list[int], preset: str, overrides: list[str],
                vocab_size: int | None = None) -> list[Point]:
    """Every (budget, depth) point with its token budget; refuses budgets too small for a size."""
    if not budgets or not depths:
        raise UserError("give at least one budget (--flops) and one size (--sizes)")
    if any(d <= 0 for d in depths):
        raise UserError(f"--sizes are model depths and must be positive, got {depths}")
    points = []
    for flops in sorted(budgets):
        for depth in sorted(depths):
            cfg = _point_config(preset, overrides, depth, vocab_size)
            params, per_token = _shape(cfg)
            steps = math.floor(flops / per_token / cfg.tokens_per_step)
            if steps < MIN_STEPS:
                need = MIN_STEPS * cfg.tokens_per_step * per_token
                raise UserError(f"a budget of {flops:.3g} FLOPs gives depth {depth} only {steps} steps; raise --flops to at "
                                f"least {need:.2g} or drop that size from --sizes")
            points.append(Point(f"c{flops:.0e}-d{depth}", flops, depth, params, steps * cfg.tokens_per_step, steps))
    return points


def _finished(run_dir: Path, steps: int) -> float | None:
    """The final val loss of a run that reached `steps`, else None."""
    if not (run_dir / "metrics.jsonl").is_file() or ckpt.list_steps(run_dir)[-1:] != [steps]:
        return None
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("val_loss") is not None]
    return records[-1]["val_loss"] if records and records[-1]["step"] == steps else None


def _write_manifest(out: Path, settings: dict, points: list[Point]) -> None:
    body = {**settings, "points": [dataclasses.asdict(p) for p in points]}
    atomic_write_text(out / "manifest.json", json.dumps(body, indent=1) + "\n")


def read_manifest(out: str | Path) -> dict:
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise UserError(f"'{out}' has no manifest.json; run `scratchllm scaling sweep --out {out}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"'{path}' is not valid JSON; delete it and rerun the sweep (finished points are kept)") from None


def run_sweep(budgets: list[float], depths: list[int], out: str | Path, preset: str = "tiny-cpu",
              overrides: list[str] = (), data: str | None = None, progress: bool = True) -> list[Point]:
    """Train every point not yet finished; returns all points with their val loss."""
    out = Path(out)
    overrides = [*overrides, *([f"data.path={data}"] if data else [])]
    base = resolve_run_config(preset, overrides)
    settings = {"preset": preset, "overrides": list(overrides), "data": dataclasses.asdict(base.data)}
    if (out / "manifest.json").is_file():
        old = read_manifest(out)
        if old.get("data") != settings["data"] or old.get("preset") != preset:
            raise UserError(f"'{out}' holds a sweep of other data or another preset; choose another --out")
    plan_points(budgets, depths, preset, overrides)               # refuse a bad plan before preparing data
    out.mkdir(parents=True, exist_ok=True)
    # subtle: OUT is not a run (no config.toml), so prepare_data could not tell its tokens are ours;
    # the manifest check above did, so a rerun reuses them.
    made = out / "tokens"
    token_dir = made if (made / "meta.json").is_file() else prepare_data(base, out, progress)
    vocab = -(-json.loads((token_dir / "meta.json").read_text())["vocab_size"] // 64) * 64
    points = plan_points(budgets, depths, preset, overrides, vocab)
    for i, point in enumerate(points):
        run_dir = out / point.name
        point.val_loss = _finished(run_dir, point.steps)
        if point.val_loss is None:
            resume = bool(ckpt.list_steps(run_dir))
            if run_dir.exists() and not resume:
                shutil.rmtree(run_dir)                              # an attempt killed before its first save
            cfg = _point_config(preset, [*overrides, f"train.max_steps={point.steps}", "train.eval_every=0",
                                         f"train.warmup_steps={max(1, point.steps // 20)}", "train.max_minutes=0",
                                         f"train.checkpoint_every={max(MIN_STEPS, point.steps // 4)}",
                                         "train.keep_checkpoints=1", f"train.progress={str(progress).lower()}"],
                                point.depth, vocab)
            print(f"[{i + 1}/{len(points)}] {point.name}: {point.params / 1e6:.2f}M params, "
                  f"{point.tokens:,} tokens ({point.steps} steps)", flush=True)
            result, *_ = pretrain(cfg, run_dir, resume=resume, progress=progress, quiet=True, token_dir=token_dir)
            point.val_loss = result.final.get("val_loss")
        _write_manifest(out, settings, points)
    return points
