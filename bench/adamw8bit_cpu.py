"""8-bit AdamW (train/adamw8bit.py) against torch.optim.AdamW on the same tiny run, on CPU: loss
curves, optimizer-state bytes and step time. Prints one JSON line.

    PYTHONPATH=src python bench/adamw8bit_cpu.py --steps 200
"""

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from scratchllm.data.loader import TokenLoader
from scratchllm.data.shards import ShardWriter
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import seed_everything
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train
from scratchllm.train.tracking import read_metrics


def token_dir(root):
    """Documents of mostly counting tokens (learnable in a few hundred steps)."""
    rng = np.random.default_rng(0)
    with ShardWriter(root, "train", vocab_size=256, separator=0) as w:
        for _ in range(400):
            steps = np.where(rng.random(200) < 0.8, 1, rng.integers(1, 256, size=200))
            w.add_document((rng.integers(1, 256) + np.cumsum(steps)) % 255 + 1)
    return root


def run(data, out, optimizer, steps):
    cfg = resolve_run_config("tiny-cpu", [
        "model.vocab_size=256", "model.block_size=64", "model.n_layer=4", "model.n_head=4", "model.n_embd=128",
        "train.batch_size=8", f"train.max_steps={steps}", "train.warmup_steps=10", "train.eval_every=0",
        "train.log_every=1", "train.progress=false", "train.device=cpu", "train.max_minutes=0",
        "train.max_lr=3e-3", f"train.optimizer={optimizer}"])
    seed_everything(0)
    model = Transformer(cfg.model)
    start = time.perf_counter()
    result = train(model, cfg, TokenLoader(data, "train", 64, 8, seed=1), out, quiet=True)
    seconds = time.perf_counter() - start
    losses = [r["loss"] for r in read_metrics(f"{out}/metrics.jsonl")]
    state = torch.load(f"{out}/checkpoints/step-{steps:06d}/optimizer.pt", weights_only=True)["state"]
    nbytes = sum(t.numel() * t.element_size() for s in state.values() for t in s.values())
    return losses, nbytes, seconds / result.step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        data = token_dir(root + "/tokens")
        fp32, fp32_bytes, fp32_s = run(data, root + "/fp32", "adamw", args.steps)
        eight, eight_bytes, eight_s = run(data, root + "/8bit", "adamw8bit", args.steps)
    gap = [abs(a - b) / a for a, b in zip(fp32, eight)]
    print(json.dumps({"steps": args.steps, "final_loss_adamw": round(fp32[-1], 4), "final_loss_adamw8bit": round(eight[-1], 4),
                      "max_rel_loss_gap": round(max(gap), 4), "mean_rel_loss_gap": round(sum(gap) / len(gap), 4),
                      "state_bytes_adamw": fp32_bytes, "state_bytes_adamw8bit": eight_bytes,
                      "state_ratio": round(eight_bytes / fp32_bytes, 3),
                      "s_per_step_adamw": round(fp32_s, 4), "s_per_step_adamw8bit": round(eight_s, 4)}))


if __name__ == "__main__":
    main()
