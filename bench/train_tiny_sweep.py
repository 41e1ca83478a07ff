"""Which tiny model learns most in a fixed CPU budget? (how the tiny-cpu preset was chosen)

Each candidate is trained for as many steps as fit in `--cpu-seconds` of *process* CPU time on
one thread (measured on its first steps), so the comparison holds on a machine shared with
other jobs, where wall time says little. Prints one JSON line per candidate: val bits per byte
on the fixed val windows, steps, tokens, CPU seconds.

    python bench/train_tiny_sweep.py --token-dir runs/speedrun/tokens --cpu-seconds 250 \
        "model.n_layer=4 model.n_embd=128" "model.n_layer=2 model.n_embd=128"
"""

import argparse
import json
import tempfile
import time

import torch

from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.data.tokenize import read_meta, tokens_per_byte
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import seed_everything
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train
from scratchllm.train.step import accumulate_gradients, next_token_loss
from scratchllm.train.optim import make_optimizer


def cpu_seconds_per_step(cfg, token_dir, steps=4):
    model = Transformer(cfg.model)
    opt = make_optimizer(model, cfg.train)
    loader = TokenLoader(token_dir, "train", cfg.model.block_size, cfg.train.batch_size)
    cpu = torch.device("cpu")
    for i in range(steps + 1):
        if i == 1:
            t = time.process_time()
        accumulate_gradients(model, [next(loader) for _ in range(cfg.train.grad_accum)], next_token_loss, cpu, "float32")
        opt.step()
        opt.zero_grad()
    return (time.process_time() - t) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token-dir", required=True)
    ap.add_argument("--cpu-seconds", type=float, default=250)
    ap.add_argument("--preset", default="tiny-cpu")
    ap.add_argument("candidates", nargs="+", help="space-separated overrides per candidate")
    args = ap.parse_args()
    torch.set_num_threads(1)
    meta = read_meta(args.token_dir)
    for cand in args.candidates:
        over = cand.split() + [f"model.vocab_size={-(-meta['vocab_size'] // 64) * 64}", "train.progress=false",
                               "train.device=cpu", "train.eval_every=100000"]
        cfg = resolve_run_config(args.preset, over)
        per_step = cpu_seconds_per_step(cfg, args.token_dir)
        cfg.train.max_steps = max(10, int(args.cpu_seconds / per_step))
        cfg.train.warmup_steps = min(cfg.train.warmup_steps, cfg.train.max_steps // 10)
        seed_everything(cfg.train.seed)
        model = Transformer(cfg.model)
        T, B = cfg.model.block_size, cfg.train.batch_size
        val = window_batches(val_windows(args.token_dir, T, cfg.train.eval_batches * B), B)
        t = time.process_time()
        with tempfile.TemporaryDirectory() as out:
            r = train(model, cfg, TokenLoader(args.token_dir, "train", T, B, seed=cfg.train.seed), out,
                      val_batches=val, tokens_per_byte=tokens_per_byte(meta), quiet=True)
        print(json.dumps({"candidate": cand, "params": model.num_params(), "steps": r.step, "tokens": r.tokens,
                          "cpu_s": round(time.process_time() - t, 1), "wall_s": round(r.wall_s, 1),
                          "val_bpb": round(r.final["val_bpb"], 4)}), flush=True)


if __name__ == "__main__":
    main()
