"""`scratchllm speedrun`: raw text to a trained, evaluated model and its report, in one command.

    tokenizer (BPE on the train documents) -> tokens (train/val shards) -> pretrain
    -> evaluate (val loss and bits per byte, unigram and bigram baselines) -> OUT/report.md

With no `--data` it uses the built-in corpus (this Python's standard library), so it runs
offline anywhere. Without a GPU it uses the `tiny-cpu` preset, sized to finish in well under
ten minutes on two CPU cores; with CUDA it picks the larger `small` preset.

    scratchllm speedrun                                   # -> runs/speedrun/report.md
    scratchllm speedrun --data books.txt --out runs/books train.max_steps=300

(tests/pipelines/test_speedrun_smoke.py runs it end to end; a run takes minutes, so the example
here shows only the preset choice.)

>>> choose_preset("gpt2-124m")
('gpt2-124m', [])
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from scratchllm.config import dumps_toml
from scratchllm.data.tokenize import read_meta, tokens_per_byte
from scratchllm.errors import UserError
from scratchllm.pipelines.baselines import ngram_baselines
from scratchllm.pipelines.report import plot_curve, samples, write_report
from scratchllm.tokenizer import load_tokenizer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import resolve_run_config
from scratchllm.train.pretrain import prepare_data, pretrain
from scratchllm.train.tracking import MetricsLog, read_metrics
from scratchllm.utils.device import resolve_device
from scratchllm.utils.outdir import check_output_dir, removed_on_failure

CPU_PRESET = "tiny-cpu"
# All of the built-in corpus (~11 MB, ~3.5M tokens); 800 steps of `small` see it about 4 times.
GPU_PRESET, GPU_OVERRIDES = "small", ["train.max_steps=800", "train.eval_every=100", "data.max_bytes=20000000"]


def choose_preset(preset: str | None) -> tuple[str, list[str]]:
    """The user's preset, else tiny-cpu on CPU and small on CUDA."""
    if preset:
        return preset, []
    return (GPU_PRESET, list(GPU_OVERRIDES)) if torch.cuda.is_available() else (CPU_PRESET, [])


def speedrun(out: str | Path = "runs/speedrun", data: str | None = None, preset: str | None = None,
             overrides: list[str] = (), progress: bool = True, force: bool = False, verbose: bool = False) -> Path:
    """Run every stage into `out`; returns the path of `out/report.md`.

    `force`: write into a directory that holds files other than a run's; `verbose`: print the config.
    A failed attempt removes what it wrote unless a checkpoint exists.
    """
    out = check_output_dir(out, ckpt.RUN_ENTRIES, force=force)
    if ckpt.list_steps(out):
        raise UserError(f"'{out}' already holds a run; pass another --out (or delete that directory) to run again")
    name, extra = choose_preset(preset)
    cfg = resolve_run_config(name, extra + list(overrides))
    if data is not None:
        cfg.data.path = data
    with removed_on_failure(out, keep=lambda d: bool(ckpt.list_steps(d))):
        return _speedrun(cfg, out, progress, force, verbose)


def _speedrun(cfg, out: Path, progress: bool, force: bool, verbose: bool) -> Path:
    timings, t = {}, time.perf_counter()
    token_dir = prepare_data(cfg, out, progress)
    meta = read_meta(token_dir)
    if not tokens_per_byte(meta):
        raise UserError(f"'{token_dir}/meta.json' has no byte count for the val split, so bits per byte cannot be "
                        "reported; pass raw text with --data (speedrun tokenizes it) instead")
    timings["tokenizer + tokenize"] = time.perf_counter() - t
    t = time.perf_counter()
    result, model, token_dir, cfg = pretrain(cfg, out, progress=progress, token_dir=token_dir, force=force,
                                             verbose=verbose)
    timings["pretrain"] = time.perf_counter() - t
    if result.interrupted:
        print(f"training was stopped; continue it with: scratchllm train --out {out} --resume")
        raise KeyboardInterrupt
    t = time.perf_counter()
    baselines = ngram_baselines(token_dir)
    metrics = read_metrics(out / "metrics.jsonl")
    curve = "loss.png"
    plot_curve(metrics, baselines, tokens_per_byte(meta), out / curve)
    pairs = samples(model.cpu(), load_tokenizer(out / "tokenizer.json"))
    timings["evaluate + report"] = time.perf_counter() - t
    timings["total"] = sum(timings.values())
    final = result.final
    figures = {**final, "steps": result.step, "tokens": result.tokens, "params": model.num_params(),
               "params_non_embedding": model.num_params(exclude_embeddings=True),
               "tokens_per_s": result.tokens / max(result.wall_s, 1e-9), "device": _device_name(cfg.train.device),
               "train_tokens": meta["splits"]["train"]["tokens"], "val_tokens": meta["splits"]["val"]["tokens"],
               "val_bytes": meta["splits"]["val"]["bytes"], "data": cfg.data.path or "built-in corpus (Python stdlib)"}
    # The last metrics line: the run's final figures next to the baselines, for scripts and benchmarks.
    MetricsLog(out / "metrics.jsonl").write({"step": result.step, "tokens": result.tokens, "val_loss": final["val_loss"],
                                             "val_bpb": final["val_bpb"], **baselines, "wall_s": timings["total"],
                                             "final": True})
    return write_report(out, config_toml=dumps_toml(cfg), figures=figures, baselines=baselines,
                        timings=timings, sample_pairs=pairs, curve=curve)


def _device_name(setting: str) -> str:
    device = resolve_device(setting)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type}, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"
