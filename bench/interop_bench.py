"""Hugging Face import/export at real model sizes: time against transformers' own loader, and agreement.

The tests prove the mapping on tiny models; this measures what a user sees on a real-sized one.
A random-init HF model of the chosen shape is saved with `save_pretrained`, then:
  load   seconds for our `load_hf` vs `AutoModelForCausalLM.from_pretrained` (the peer), same files
  export seconds for `export_hf` (run directory -> HF directory) vs HF's `save_pretrained`
  agree  max |logit difference| ours vs transformers on a random batch (fp32), and the fraction of
         64 greedy tokens that are identical (our KV-cache engine vs `generate(do_sample=False)`)

    OMP_NUM_THREADS=2 python bench/interop_bench.py --arch gpt2 --size 124m --seq 256      # CPU
    python bench/interop_bench.py --arch llama --size 1b --seq 1024 --device cuda          # one GPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from scratchllm.inference.engine import generate
from scratchllm.interop.hf import export_hf, load_hf
from scratchllm.train.checkpoint import save_run_weights

SIZES = {  # (layers, width, heads, kv heads, mlp hidden)
    "tiny": (2, 128, 4, 2, 344),
    "124m": (12, 768, 12, 4, 2048),
    "1b": (16, 2048, 32, 8, 8192),
}


def hf_model(arch: str, size: str, vocab: int, ctx: int):
    import transformers

    n_layer, d, heads, kv, hidden = SIZES[size]
    if arch == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=ctx, n_embd=d, n_layer=n_layer, n_head=heads,
                                      bos_token_id=0, eos_token_id=0)
        return transformers.GPT2LMHeadModel(cfg).eval()
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=hidden, num_hidden_layers=n_layer,
                                   num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=ctx,
                                   rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    return transformers.LlamaForCausalLM(cfg).eval()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@torch.no_grad()
def agreement(ours, theirs, vocab: int, batch: int, seq: int, device: str) -> dict:
    idx = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0)).to(device)
    diff = (ours(idx) - theirs(idx).logits).abs().max().item()
    prompt = idx[:1, :16]
    mine = list(generate(ours, prompt[0].tolist(), max_new_tokens=64, temperature=0))
    theirs.generation_config.eos_token_id = None
    hf = theirs.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=64,
                         do_sample=False, pad_token_id=0)[0, 16:].tolist()
    same = next((i for i, (a, b) in enumerate(zip(mine, hf)) if a != b), len(hf))
    return {"max_abs_logit_diff": diff, "greedy_tokens_identical": f"{same}/{len(hf)}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=["gpt2", "llama"], default="gpt2")
    p.add_argument("--size", choices=list(SIZES), default="124m")
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        theirs = hf_model(args.arch, args.size, args.vocab, max(args.seq, 1024))
        _, t_hf_save = timed(lambda: theirs.save_pretrained(tmp / "hf"))
        del theirs
        (ours, _), t_ours_load = timed(lambda: load_hf(tmp / "hf"))
        theirs, t_hf_load = timed(lambda: AutoModelForCausalLM.from_pretrained(tmp / "hf").eval())
        save_run_weights(tmp / "run", ours)
        _, t_ours_export = timed(lambda: export_hf(tmp / "run", tmp / "exported"))
        ours.to(args.device)
        theirs.to(args.device)
        result = {
            "bench": "interop_hf", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": torch.cuda.get_device_name() if args.device == "cuda" else "2-core CPU, shared",
            "arch": args.arch, "size": args.size, "params_M": round(ours.num_params() / 1e6, 1),
            "load_s": {"ours": round(t_ours_load, 2), "transformers": round(t_hf_load, 2),
                       "ratio": round(t_ours_load / t_hf_load, 2)},
            "export_s": {"ours": round(t_ours_export, 2), "transformers_save_pretrained": round(t_hf_save, 2),
                         "ratio": round(t_ours_export / t_hf_save, 2)},
            **agreement(ours, theirs, args.vocab, args.batch, args.seq, args.device),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
