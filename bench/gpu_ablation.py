"""Ablation on Gutenberg at a fixed token budget: nanoGPT's recipe, then Muon and each architecture
switch added one at a time (cumulative, modded-nanogpt style), same data, same tokens, one GPU.

Each row trains the same shape (8 layers × 512, context 1024, 32 sequences a step by default)
through `scratchllm.train.pretrain` for `--steps` steps on the same token directory, validates on
the same held-out windows every `--eval-every` steps, and reports its final val loss, its training
wall time, and the training seconds it took to first reach the baseline's final val loss
(interpolated between validations): the "time-to-loss" against nanoGPT's AdamW recipe.

The token directory is made once (a BPE of `--vocab` ids trained on the first text, then
`--max-bytes` of raw Gutenberg tokenized with `--workers` processes) under `--cache` and reused by
later calls. Prints one JSON line per row, then a Markdown table.

    python bench/gpu_ablation.py --gutenberg ../shared/data/pretrain/gutenberg   # tokens cached in runs/ablation-cache
    python bench/gpu_ablation.py --rows baseline,muon,rope --steps 300   # a subset

On a CPU, `--device cpu --tiny` runs the rows on a toy shape and the built-in corpus (a smoke test, not a figure).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from scratchllm.train.config import resolve_run_config
from scratchllm.train.pretrain import pretrain, prepare_data
from scratchllm.train.tracking import read_metrics

# (row name, overrides added to everything above it). Row 0 is nanoGPT's recipe: GPT-2's
# architecture (LayerNorm, learned positions, GELU, tied head) and AdamW at its lr and betas.
ROWS = [
    ("baseline", []),
    ("muon", ["train.optimizer=muon", "train.max_lr=3e-3", "train.min_lr=3e-4"]),
    ("rope", ["model.position=rope", "model.norm=rmsnorm"]),
    ("qk_norm", ["model.qk_norm=true"]),
    ("relu2", ["model.mlp=relu2"]),
    ("zero_init_proj", ["model.zero_init_proj=true"]),
    ("untied_head", ["model.tie_embeddings=false"]),
    ("logit_softcap", ["model.logit_softcap=15.0"]),
    ("value_embeds", ["model.value_embeds=2"]),
]


def base_overrides(args) -> list[str]:
    shape = (["model.n_layer=4", "model.n_head=2", "model.n_embd=32", "model.block_size=32"] if args.tiny else
             [f"model.n_layer={args.layers}", f"model.n_head={args.width // 64}", f"model.n_embd={args.width}",
              "model.block_size=1024"])
    return shape + [
        "model.bias=false", "model.dropout=0.0", "model.norm=layernorm", "model.position=learned", "model.mlp=gelu",
        "model.tie_embeddings=true", f"train.batch_size={args.batch_size}", "train.grad_accum=1",
        f"train.max_steps={args.steps}", f"train.warmup_steps={max(1, args.steps // 20)}", f"train.max_lr={args.baseline_lr}",
        f"train.min_lr={args.baseline_lr / 10}", "train.weight_decay=0.1", "train.beta1=0.9", "train.beta2=0.95",
        f"train.eval_every={args.eval_every}", f"train.eval_batches={args.eval_batches}", "train.log_every=10",
        "train.checkpoint_every=0", "train.progress=false", f"train.device={args.device}",
        f"train.compile={'true' if args.compile else 'false'}", "train.max_minutes=0",
        f"data.vocab_size={args.vocab}", f"data.workers={args.workers}", f"data.max_bytes={args.max_bytes}",
        "data.tokenizer_bytes=5000000", "data.val_fraction=0.01"]


def token_dir(args) -> Path:
    """The cached token directory, made on the first call."""
    cache = Path(args.cache)
    if (cache / "tokens" / "meta.json").is_file():
        return cache / "tokens"
    data = "" if args.tiny else args.gutenberg
    if not args.tiny and not data:
        sys.exit("no token directory in --cache yet: pass --gutenberg DIR (the raw .jsonl.xz books) to make one")
    cfg = resolve_run_config(None, base_overrides(args) + [f"data.path={data}"])
    t0 = time.perf_counter()
    out = prepare_data(cfg, cache, progress=False)
    print(f"# token directory {out} made in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def curve(records: list[dict]) -> tuple[list[tuple[float, float]], float]:
    """[(training seconds, val_loss)] at each validation, and the run's total training seconds.

    Seconds are summed from each log interval's tokens and tokens/s, so validation time is left out.
    """
    seconds, tokens, points = 0.0, 0, []
    for r in records:
        seconds += (r["tokens"] - tokens) / r["tokens_per_s"]
        tokens = r["tokens"]
        if "val_loss" in r:
            points.append((seconds, r["val_loss"]))
    return points, seconds


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    """Training seconds at which the val loss first reaches `target` (linear between validations)."""
    prev = (0.0, float("inf"))
    for t, loss in points:
        if loss <= target:
            if prev[1] == float("inf"):
                return t
            return prev[0] + (t - prev[0]) * (prev[1] - target) / (prev[1] - loss)
        prev = (t, loss)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gutenberg", default="", help="directory of raw Gutenberg .jsonl.xz (first call only)")
    ap.add_argument("--cache", default="runs/ablation-cache", help="where the token directory is kept")
    ap.add_argument("--rows", default=",".join(name for name, _ in ROWS), help="comma list of rows (cumulative)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval-batches", type=int, default=4)
    ap.add_argument("--baseline-lr", type=float, default=6e-4,
                    help="AdamW's peak lr before the muon row (nanoGPT's 6e-4 is tuned for 124M, not this shape)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--max-bytes", type=int, default=60_000_000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--compile", action="store_true", help="torch.compile each row (adds its compile time to the call)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="toy shape on the built-in corpus (CPU smoke test)")
    args = ap.parse_args()
    if args.tiny:
        args.vocab, args.max_bytes, args.workers, args.batch_size = 300, 300_000, 1, 4
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("this benchmark needs a CUDA GPU (or --device cpu --tiny)")
        torch.backends.cuda.matmul.allow_tf32 = True
    wanted = args.rows.split(",")
    tokens = token_dir(args)
    overrides, results = base_overrides(args) + [f"data.path={tokens}"], []
    for name, extra in ROWS:
        overrides = overrides + extra        # cumulative: each row keeps every switch above it
        if name not in wanted:
            continue
        cfg = resolve_run_config(None, overrides)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result, _, _, _ = pretrain(cfg, Path(out) / "run", progress=False, quiet=True, token_dir=tokens)
            wall = time.perf_counter() - t0
            points, train_s = curve(read_metrics(Path(out) / "run" / "metrics.jsonl"))
        row = {"row": name, "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
               "tokens": result.tokens, "val_loss": round(points[-1][1], 4), "train_s": round(train_s, 1),
               "wall_s": round(wall, 1), "curve": [(round(t, 1), round(v, 4)) for t, v in points]}
        if results:
            reached = time_to(points, results[0]["val_loss"])
            row["time_to_baseline_loss_s"] = round(reached, 1) if reached is not None else None
        results.append(row)
        print(json.dumps(row), flush=True)
    print("\n| row (cumulative) | val loss | train s | time to baseline's final val loss |\n|---|---|---|---|")
    for r in results:
        reach = r.get("time_to_baseline_loss_s")
        ratio = f"{reach:.1f} s ({reach / results[0]['train_s']:.2f}×)" if reach is not None else "—"
        print(f"| {r['row']} | {r['val_loss']:.4f} | {r['train_s']:.1f} | {ratio if r is not results[0] else '1.00×'} |")


if __name__ == "__main__":
    main()
