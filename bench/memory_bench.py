"""The seed's exercise "train a 10x larger model on the same hardware", on one GPU, plus the cost of
activation checkpointing. One call, about 3 minutes on an H200:

    PYTHONPATH=src python bench/memory_bench.py --budget-gib 8 --out bench_memory.json

The GPU is capped at `--budget-gib` (torch.cuda.set_per_process_memory_fraction), so the exercise
means something on a card of any size. Model sizes come from the `model.depth` dial (depth d:
d layers, width 64·d, gpt2-124m's vocabulary), a micro-batch of `--rows` × `--seq` tokens.

1. **plain**: fp32, AdamW, no checkpointing. The largest depth the memory planner says fits is
   trained (and the next one, to show it does not); that is P0.
2. **checkpointing** on the P0 model: peak memory and tokens/s with and without.
3. **10×**: the depth whose parameter count is closest to 10·P0, three ways:
   bf16 autocast + checkpointing + 8-bit AdamW (fits only if the state does), and
   bf16 autocast + checkpointing + FSDP2 with CPU offload (one rank: parameters, gradients and
   AdamW live in CPU memory; the GPU holds one block's bf16 weights at a time and the activations).

Each configuration runs `--steps` optimizer steps through the project's own step
(`train.step.accumulate_gradients`, clipping, `optimizer.step`); peak memory is
`torch.cuda.max_memory_allocated`, tokens/s is over the steps after the first. An OOM is recorded
as {"fits": false}. Prints one JSON line per configuration and writes all of them to `--out`.
"""

import argparse
import contextlib
import json
import math
import os
import time

import torch
import torch.distributed as dist

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train import distributed
from scratchllm.train.config import ParallelConfig, TrainConfig
from scratchllm.train.memory import plan_memory
from scratchllm.train.optim import make_optimizer
from scratchllm.train.step import accumulate_gradients

VOCAB = 50304


def model_config(depth: int, seq: int) -> ModelConfig:
    return ModelConfig(vocab_size=VOCAB, block_size=seq, depth=depth).sized()


def params_of(depth: int, seq: int) -> int:
    return sum(math.prod(s) for s in _shapes(model_config(depth, seq)))


def _shapes(cfg):
    with torch.device("meta"):
        return [p.shape for p in Transformer(cfg).parameters()]


def run(name: str, depth: int, args, *, bf16=False, ckpt=False, optimizer="adamw", offload=False) -> dict:
    """Train `args.steps` steps of the depth-`depth` model in one configuration; its peak memory and speed."""
    device = torch.device(args.device)
    cfg = model_config(depth, args.seq)
    record = {"name": name, "depth": depth, "params_M": round(params_of(depth, args.seq) / 1e6, 1),
              "bf16": bf16, "checkpointing": ckpt, "optimizer": optimizer, "cpu_offload": offload}
    model = optim = None
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        torch.manual_seed(0)
        model = Transformer(cfg)  # built on the CPU: with offload it stays there
        model.gradient_checkpointing = ckpt
        if offload:
            distributed.wrap(model, ParallelConfig(dp="fsdp", cpu_offload=True), device)
        else:
            model.to(device)
        # offloaded parameters live on the CPU: the fused (CUDA-only) AdamW kernel cannot step them
        optim = make_optimizer(model, TrainConfig(optimizer=optimizer, max_lr=3e-4), "cpu" if offload else device.type)
        gen = torch.Generator().manual_seed(0)
        times = []
        for _ in range(args.steps):
            rows = torch.randint(0, VOCAB, (args.rows, args.seq + 1), generator=gen).to(device)
            start = time.perf_counter()
            accumulate_gradients(model, [(rows[:, :-1], rows[:, 1:])], _loss, device, "bfloat16" if bf16 else "float32")
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            optim.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        record.update(fits=True, tokens_per_s=round(args.rows * args.seq / (sum(times[1:]) / max(1, len(times) - 1))),
                      step_s=[round(t, 3) for t in times])
    except torch.OutOfMemoryError:
        record.update(fits=False)
    finally:
        if device.type == "cuda":
            record["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        del model, optim
    print(json.dumps(record), flush=True)
    return record


def _loss(model, batch):
    x, y = batch
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def largest_planned(args) -> int:
    """The largest depth whose plain fp32 training the planner says fits the budget (+5% headroom)."""
    best = 1
    for depth in range(1, 64):
        plan = plan_memory(model_config(depth, args.seq), args.rows, dtype_bytes=4)[0]
        if plan.total() * 1.05 > args.budget_gib * 2**30:
            break
        best = depth
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-gib", type=float, default=8.0, help="GPU memory the exercise may use")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="bench_memory.json")
    args = ap.parse_args()
    if args.device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.budget_gib * 2**30 / total))
    # FSDP2 needs a process group, also for one rank
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo", rank=0, world_size=1)
    results = []
    with contextlib.suppress(KeyboardInterrupt):
        d0 = largest_planned(args)
        results.append(run("plain", d0, args))
        results.append(run("plain, one size up", d0 + 1, args))
        results.append(run("plain + checkpointing", d0, args, ckpt=True))
        results.append(run("bf16 + checkpointing", d0, args, bf16=True, ckpt=True))
        p0 = params_of(d0, args.seq)
        d10 = min(range(d0, 96), key=lambda d: abs(params_of(d, args.seq) - 10 * p0))
        results.append(run("10x: bf16 + checkpointing + adamw8bit", d10, args, bf16=True, ckpt=True,
                           optimizer="adamw8bit"))
        results.append(run("10x: bf16 + checkpointing + FSDP2 CPU offload", d10, args, bf16=True, ckpt=True,
                           offload=True))
    with open(args.out, "w") as f:
        json.dump({"budget_gib": args.budget_gib, "rows": args.rows, "seq": args.seq, "results": results}, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
