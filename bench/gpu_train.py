"""Training throughput and MFU of the gpt2-124m preset on CUDA (bf16 autocast, torch.compile).

nanoGPT's setup: batch 12 x 1024 tokens a step, fused AdamW, compiled. The timed steps come
after `--warmup` steps (compilation, allocator warmup). With `--nanogpt PATH/TO/nanoGPT` the
same loop (ours: scratchllm.train.loop.train, same optimizer, same batches) also times
nanoGPT's own `model.py` GPT of the same shape, so the two models compare on one device in
one process. `--variants` adds rows of ours: `separate-qkv` (three q/k/v matmuls instead of the
fused one, Attention.fuse_qkv=False) and `muon` (train.optimizer=muon: Newton–Schulz's cost per
step). Prints one JSON line per row.

    python bench/gpu_train.py --steps 50                       # ours only
    python bench/gpu_train.py --steps 50 --nanogpt ~/nanoGPT   # ours and nanoGPT's model
    python bench/gpu_train.py --steps 50 --variants separate-qkv,muon --nanogpt ~/nanoGPT   # ~4 min on an H200
"""

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile

import torch

from scratchllm.model.attention import Attention
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import seed_everything
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train
from scratchllm.train.step import next_token_loss
from scratchllm.train.tracking import device_peak_flops, read_metrics


class RandomBatches:
    """Uniform random tokens: throughput does not depend on the data, and nothing is read from disk."""

    def __init__(self, batch_size, block_size, vocab_size, device):
        self.shape, self.vocab, self.device = (batch_size, block_size + 1), vocab_size, device
        self.gen = torch.Generator(device="cpu").manual_seed(0)

    def __next__(self):
        w = torch.randint(0, self.vocab, self.shape, generator=self.gen).pin_memory()
        return w[:, :-1], w[:, 1:]


def nanogpt_model(path, cfg):
    spec = importlib.util.spec_from_file_location("nanogpt_model", f"{path}/model.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # torch.compile re-imports the module of the code it traces
    spec.loader.exec_module(mod)
    m = cfg.model
    return mod.GPT(mod.GPTConfig(block_size=m.block_size, vocab_size=m.vocab_size, n_layer=m.n_layer,
                                 n_head=m.n_head, n_embd=m.n_embd, dropout=0.0, bias=m.bias))


def nanogpt_loss(model, batch):
    x, y = batch
    _, loss = model(x, y)
    return loss


def measure(name, model, loss_fn, cfg, args, flops_per_token):
    with tempfile.TemporaryDirectory() as out:
        train(model, cfg, RandomBatches(args.batch_size, args.block_size, cfg.model.vocab_size, "cuda"), out,
              loss_fn=loss_fn, quiet=True)
        records = read_metrics(f"{out}/metrics.jsonl")
    timed = [r["tokens_per_s"] for r in records if r["step"] > args.warmup]
    tok_s = statistics.median(timed)
    peak = device_peak_flops(torch.device("cuda"))
    return {"model": name, "device": torch.cuda.get_device_name(), "batch": f"{args.batch_size}x{args.block_size}",
            "compile": cfg.train.compile, "dtype": "bfloat16", "steps_timed": args.steps,
            "tokens_per_s": round(tok_s), "mfu": round(flops_per_token * tok_s / peak, 4) if peak else None,
            "peak_mem_mb": round(records[-1]["peak_mem_mb"]), "params": sum(p.numel() for p in model.parameters())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50, help="timed steps (after warmup; a multiple of 10)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--nanogpt", default=None, help="path to a nanoGPT checkout, to time its model.py too")
    ap.add_argument("--variants", default="", help="comma list of extra rows of ours: separate-qkv, muon")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("this benchmark needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    overrides = [
        f"train.batch_size={args.batch_size}", f"model.block_size={args.block_size}", "train.grad_accum=1",
        f"train.max_steps={args.warmup + args.steps}", "train.warmup_steps=10", "train.log_every=10",
        "train.eval_every=0", "train.checkpoint_every=0", "train.progress=false", "train.device=cuda",
        f"train.compile={'false' if args.no_compile else 'true'}"]
    cfg = resolve_run_config("gpt2-124m", overrides)
    rows = [("scratchllm", cfg, True)]
    for variant in filter(None, args.variants.split(",")):
        if variant == "separate-qkv":
            rows.append(("scratchllm separate q/k/v", cfg, False))
        elif variant == "muon":
            rows.append(("scratchllm + Muon", resolve_run_config("gpt2-124m", overrides + ["train.optimizer=muon"]), True))
        else:
            sys.exit(f"unknown variant {variant!r}; use separate-qkv or muon")
    for name, row_cfg, fused in rows:
        Attention.fuse_qkv = fused
        seed_everything(0)
        ours = Transformer(row_cfg.model)
        fpt = ours.flops_per_token(args.block_size)
        print(json.dumps(measure(name, ours, next_token_loss, row_cfg, args, fpt)), flush=True)
        del ours
        torch.compiler.reset()   # each row compiles afresh: no graph cached from the previous row's model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    Attention.fuse_qkv = True
    if args.nanogpt:
        seed_everything(0)
        theirs = nanogpt_model(args.nanogpt, cfg)
        print(json.dumps(measure("nanoGPT model.py", theirs, nanogpt_loss, cfg, args, fpt)), flush=True)


if __name__ == "__main__":
    main()
