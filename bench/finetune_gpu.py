"""Peak memory and tokens/s of fine-tuning the llama-350m preset on CUDA: full, LoRA, QLoRA, and PEFT.

Ours runs through the one loop (`train/loop.py`, bf16 autocast, fp32 weights, AdamW) exactly as
`scratchllm finetune` does: `full` trains everything, `lora` r=16 on every linear layer of the
blocks (q k v o gate up down), `qlora` the same on an NF4 base. The peer is Hugging Face's
LlamaForCausalLM of the same shape with PEFT's LoRA (same rank, targets, optimizer, autocast),
warmed up for as many steps as are timed and timed with a plain loop in the same process; bitsandbytes (PEFT's QLoRA) is not installed on
the device, so QLoRA has no peer. Random tokens: speed and memory do not depend on the data.
Prints one JSON line per case.

    python bench/finetune_gpu.py --batch 4 --seq 1024 --steps 8
"""

import argparse
import gc
import json
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from scratchllm.interop.hf_config import config_to_hf
from scratchllm.model.lora import AdapterOnly, LoraConfig, apply_lora
from scratchllm.model.nf4 import block_linears, quantize_linears
from scratchllm.model.transformer import Transformer
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train
from scratchllm.train.step import next_token_loss
from scratchllm.train.tracking import read_metrics

TARGETS = ["q", "k", "v", "o", "gate", "up", "down"]
HF_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class RandomBatches:
    def __init__(self, batch, seq, vocab):
        self.shape, self.vocab = (batch, seq + 1), vocab
        self.gen = torch.Generator().manual_seed(0)

    def __next__(self):
        w = torch.randint(0, self.vocab, self.shape, generator=self.gen)
        return w[:, :-1], w[:, 1:]


def fresh():
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def ours(method, args, cfg):
    fresh()
    torch.manual_seed(0)
    model = Transformer(cfg.model)
    if method == "qlora":
        quantize_linears(model, block_linears(model))
    trainee = model
    if method != "full":
        apply_lora(model, LoraConfig(r=16, alpha=32, targets=TARGETS))
        trainee = AdapterOnly(model)
    model.cuda()
    torch.cuda.reset_peak_memory_stats()
    cfg.train.max_steps = 2 * args.steps
    cfg.train.log_every = args.steps          # the first line is the warmup, the second the timed steps
    with tempfile.TemporaryDirectory() as out:
        train(trainee, cfg, RandomBatches(args.batch, args.seq, cfg.model.vocab_size), out, loss_fn=next_token_loss,
              quiet=True)
        last = read_metrics(f"{out}/metrics.jsonl")[-1]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"impl": "scratchllm", "method": method, "tokens_per_s": round(last["tokens_per_s"]),
            "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2), "trainable": trainable}


def peft_peer(method, args, cfg):
    import peft            # optional: the peers are needed only for their rows
    import transformers

    fresh()
    hf_cfg = config_to_hf(cfg.model)
    config = transformers.LlamaConfig(**{k: v for k, v in hf_cfg.items() if k not in ("architectures", "model_type")})
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    if args.grad_ckpt:
        model.gradient_checkpointing_enable()
    if method == "lora":
        model = peft.get_peft_model(model, peft.LoraConfig(r=16, lora_alpha=32, target_modules=HF_TARGETS))
    model.cuda().train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    batches = RandomBatches(args.batch, args.seq, cfg.model.vocab_size)
    torch.cuda.reset_peak_memory_stats()
    for step in range(2 * args.steps):
        if step == args.steps:                 # the first `steps` steps warm up, as for ours
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = (t.cuda() for t in next(batches))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    tok_s = args.steps * args.batch * args.seq / (time.perf_counter() - t0)
    return {"impl": "transformers+peft" if method == "lora" else "transformers", "method": method,
            "tokens_per_s": round(tok_s), "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "trainable": sum(p.numel() for p in params)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in both")
    ap.add_argument("--cases", default="full,lora,qlora,peft-full,peft-lora")
    args = ap.parse_args()
    cfg = resolve_run_config("llama-350m", [f"model.block_size={args.seq}", f"train.batch_size={args.batch}",
                                            "train.grad_accum=1", "train.compile=false", "train.progress=false",
                                            "train.checkpoint_every=0", "train.eval_every=0", "train.warmup_steps=1",
                                            f"train.gradient_checkpointing={str(args.grad_ckpt).lower()}"])
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch,
                      "seq": args.seq, "steps": args.steps, "grad_ckpt": args.grad_ckpt}), flush=True)
    for case in args.cases.split(","):
        try:
            result = peft_peer(case[5:], args, cfg) if case.startswith("peft-") else ours(case, args, cfg)
        except Exception as e:  # one failing case should not hide the others' figures
            result = {"case": case, "error": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps({**result, "grad_ckpt": args.grad_ckpt}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
