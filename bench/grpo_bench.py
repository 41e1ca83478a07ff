"""GRPO on synthetic arithmetic: greedy accuracy on held-out sums before and after, and rollout tokens/s.

The issue's GPU figure, in one call of a few minutes, with no data or network: a small model
is trained from scratch (through the one loop) on "a+b=c" for a+b in 0..N, briefly, so that it
solves part of the sums; then `scratchllm.align.grpo.grpo` runs with the exact-answer reward on
the training sums, and both models answer the held-out sums (a hash split: pairs never seen in
either stage) greedily through the engine.

    PYTHONPATH=src python bench/grpo_bench.py                       # GPU: ~2-4 minutes
    PYTHONPATH=src python bench/grpo_bench.py --quick --device cpu  # a smoke run on a laptop

Prints one JSON line and a markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch

from scratchllm.align.grpo import grpo
from scratchllm.inference.engine import Request, SamplingParams, generate_batch
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import RunConfig, TrainConfig
from scratchllm.train.loop import train


def byte_tokenizer() -> Tokenizer:
    return Tokenizer({bytes([i]): i for i in range(256)}, "gpt4",
                     {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})


def split(pairs, held_fraction: float):
    """(train, held-out) by a hash of the pair: the same split on every machine."""
    def held(p):
        return int(hashlib.sha256(f"{p[0]}+{p[1]}".encode()).hexdigest(), 16) % 1000 < held_fraction * 1000
    return [p for p in pairs if not held(p)], [p for p in pairs if held(p)]


class SumBatches:
    """Endless batches of "a+b=c<|endoftext|>" rows, loss on the answer and its end only."""

    def __init__(self, pairs, tok, batch_size: int, width: int, seed: int):
        self.pairs, self.tok, self.batch_size, self.width = pairs, tok, batch_size, width
        self.rng = random.Random(seed)

    def __iter__(self):
        return self

    def __next__(self):
        inputs = torch.zeros(self.batch_size, self.width, dtype=torch.long)
        targets = torch.full((self.batch_size, self.width), -100, dtype=torch.long)
        for row in range(self.batch_size):
            a, b = self.rng.choice(self.pairs)
            prompt = self.tok.encode(f"{a}+{b}=")
            ids = prompt + self.tok.encode(str(a + b)) + [self.tok.eot_id]
            inputs[row, :len(ids) - 1] = torch.tensor(ids[:-1])
            targets[row, len(prompt) - 1:len(ids) - 1] = torch.tensor(ids[len(prompt):])
        return inputs, targets


def accuracy(run_dir: Path, pairs, device: str) -> float:
    run = ckpt.load_run(run_dir, device=device)
    tok = run.tokenizer
    requests = [Request(tok.encode(f"{a}+{b}="), 4, SamplingParams(temperature=0), (tok.eot_id,)) for a, b in pairs]
    seqs = generate_batch(run.model, requests, vocab_size=tok.vocab_size)
    return sum(tok.decode(s.generated).strip() == str(a + b) for s, (a, b) in zip(seqs, pairs)) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-n", type=int, default=49, help="operands 0..max_n")
    ap.add_argument("--sft-steps", type=int, default=3000, help="most SFT steps (it stops at --target)")
    ap.add_argument("--target", type=float, default=0.3, help="SFT until this share of training sums is solved")
    ap.add_argument("--grpo-steps", type=int, default=200)
    ap.add_argument("--grpo-lr", type=float, default=5e-5, help="RL's lr: far below SFT's (3e-4 broke a 64-wide model)")
    ap.add_argument("--group-size", type=int, default=16)
    ap.add_argument("--prompts-per-rollout", type=int, default=32)
    ap.add_argument("--small", action="store_true", help="a 2-layer, 64-wide model (the --quick one)")
    ap.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    ap.add_argument("--keep", default="", help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args()
    if args.quick:
        args.small = True
        args.max_n, args.sft_steps, args.grpo_steps, args.group_size, args.prompts_per_rollout = 9, 200, 8, 8, 8
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="grpo-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    tok = byte_tokenizer()
    train_pairs, held = split([(a, b) for a in range(args.max_n + 1) for b in range(args.max_n + 1)], 0.1)
    mcfg = ModelConfig(vocab_size=320, block_size=32, n_layer=2 if args.quick or args.small else 4,
                       n_head=4, n_embd=64 if args.quick or args.small else 256, bias=False)
    # Constant lr in chunks of 100 steps until the model solves `--target` of the training sums (or
    # --sft-steps run out): RL needs a start where some of G samples succeed and some fail.
    tc = TrainConfig(device=args.device, batch_size=64 if args.small else 256, max_steps=args.sft_steps,
                     max_lr=3e-3 if args.small else 1e-3, min_lr=3e-3 if args.small else 1e-3, schedule="constant",
                     warmup_steps=0, weight_decay=0.0, eval_every=0, log_every=50, checkpoint_every=0,
                     keep_checkpoints=1, progress=False)
    t0 = time.perf_counter()
    sft_dir, grpo_dir = root / "sft", root / "grpo"
    shutil.rmtree(sft_dir, ignore_errors=True)
    shutil.rmtree(grpo_dir, ignore_errors=True)
    torch.manual_seed(0)
    probe = random.Random(1).sample(train_pairs, min(200, len(train_pairs)))
    done, solved = 0, 0.0
    while done < args.sft_steps and solved < args.target:
        resume = done > 0
        done = min(done + 100, args.sft_steps)
        # each chunk resumes the last one (the loop's checkpoint); a constant lr keeps the schedule the same
        train(Transformer(mcfg), RunConfig(model=mcfg, train=dataclasses.replace(tc, stop_after=done)),
              SumBatches(train_pairs, tok, tc.batch_size, 16, done), sft_dir, quiet=True, resume=resume)
        tok.save(str(sft_dir / "tokenizer.json"))
        solved = accuracy(sft_dir, probe, args.device)
        print(f"sft step {done}: {solved:.3f} of 200 training sums solved", flush=True)
    sft_s = time.perf_counter() - t0
    before = accuracy(sft_dir, held, args.device)
    data = root / "sums.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n" for a, b in train_pairs))
    rows = args.group_size * args.prompts_per_rollout
    t1 = time.perf_counter()
    result = grpo(str(sft_dir), str(data), grpo_dir, [
        f"train.device={args.device}", f"train.max_steps={args.grpo_steps}", f"train.batch_size={min(rows, 128)}",
        f"train.max_lr={args.grpo_lr}", f"train.min_lr={args.grpo_lr}", "train.progress=false",
        "train.checkpoint_every=0",
        f"grpo.group_size={args.group_size}", f"grpo.prompts_per_rollout={args.prompts_per_rollout}",
        "grpo.max_new_tokens=4", "grpo.reward=exact", "grpo.epochs=1", "grpo.beta=0.02"], quiet=True)
    grpo_s = time.perf_counter() - t1
    after = accuracy(grpo_dir, held, args.device)
    records = [json.loads(line) for line in (grpo_dir / "metrics.jsonl").read_text().splitlines()]
    tok_s = sorted(r["rollout_tokens_per_s"] for r in records)[len(records) // 2]
    out = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
           "held_out_sums": len(held), "accuracy_before": before, "accuracy_after": after,
           "train_reward_first": records[0]["reward_mean"], "train_reward_last": records[-1]["reward_mean"],
           "kl_last": records[-1]["kl"], "rollout_tokens_per_s_median": tok_s, "grpo_steps": result.step,
           "sft_steps": done, "sft_s": round(sft_s, 1), "grpo_s": round(grpo_s, 1), "runs": str(root)}
    print(json.dumps(out))
    print(f"| GRPO, a+b for a, b ≤ {args.max_n} ({len(held)} held-out sums) | {before:.3f} → {after:.3f} | "
          f"{tok_s:,.0f} | {records[-1]['kl']:.3f} | {result.step} steps in {grpo_s:.0f}s |")


if __name__ == "__main__":
    main()
