"""Model speed against a peer measured in the same run: Hugging Face's GPT-2 of the same shape.

Two figures, each as ours / peer:
  train  forward + backward tokens/s (no optimizer: the model alone), fp32 on CPU, bf16 autocast on CUDA
  decode greedy generation tokens/s: our KV-cache engine, our model recomputing everything each
         step (the cost the cache removes), and transformers' `generate` with its cache

    OMP_NUM_THREADS=2 python bench/model_bench.py --preset small --batch 4 --seq 256        # CPU
    python bench/model_bench.py --preset gpt2-124m --batch 12 --seq 1024 --compile          # one GPU
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from scratchllm.config import from_dict, load_preset
from scratchllm.inference.engine import generate
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def hf_gpt2(cfg: ModelConfig, device: str):
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
                        attn_implementation="sdpa")
    return GPT2LMHeadModel(hf_cfg).to(device)


def train_tokens_per_s(forward, idx, steps: int, warmup: int, device: str) -> float:
    """Forward + backward throughput of `forward(idx) -> logits`, next-token loss in fp32."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            logits = forward(idx[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), idx[:, 1:].flatten())
        loss.backward()
    sync(device)
    return steps * idx[:, :-1].numel() / (time.perf_counter() - t0)


def decode_tokens_per_s(run, n_new: int, device: str) -> float:
    run()                                   # warm-up (allocations, kernels)
    sync(device)
    t0 = time.perf_counter()
    run()
    sync(device)
    return n_new / (time.perf_counter() - t0)


@torch.no_grad()
def recompute(model, prompt: list[int], n_new: int) -> list[int]:
    ids = torch.tensor([prompt], device=model.tok_emb.weight.device)
    for _ in range(n_new):
        ids = torch.cat([ids, model(ids)[:, -1:].argmax(-1)], dim=1)
    return ids[0, len(prompt):].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating ours/peer rounds")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (CUDA)")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    # The peer is GPT-2, so bench our model in its GPT-2 shape (biases, tied, learned positions).
    preset = load_preset(args.preset)["model"]
    cfg = from_dict(ModelConfig, {**preset, "norm": "layernorm", "position": "learned", "mlp": "gelu",
                                  "n_kv_head": None, "bias": True, "tie_embeddings": True, "dropout": 0.0})
    ours, peer = Transformer(cfg).to(device), hf_gpt2(cfg, device)
    fwd_ours, fwd_peer = ours, (lambda idx: peer(idx).logits)
    if args.compile:
        fwd_ours, fwd_peer = torch.compile(ours), torch.compile(fwd_peer)
    idx = torch.randint(0, cfg.vocab_size, (args.batch, args.seq + 1), device=device)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "device":
              torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
              "preset": args.preset, "params": ours.num_params(), "batch": args.batch, "seq": args.seq,
              "compile": args.compile}
    # Alternate ours and peer round by round so drift in a shared machine's load hits both alike;
    # the median of the per-round ratios is the figure least moved by a noisy neighbour.
    t_ours, t_peer = [], []
    for _ in range(args.rounds):
        t_ours.append(train_tokens_per_s(fwd_ours, idx, args.steps, args.warmup, device))
        t_peer.append(train_tokens_per_s(fwd_peer, idx, args.steps, args.warmup, device))
    ratios = sorted(a / b for a, b in zip(t_ours, t_peer))
    result.update(train_tok_s_ours=round(max(t_ours)), train_tok_s_peer=round(max(t_peer)),
                  train_ratio_median=round(ratios[len(ratios) // 2], 3), train_ratios=[round(r, 3) for r in ratios])

    ours.eval(), peer.eval()
    prompt = torch.randint(0, cfg.vocab_size, (args.prompt_len,)).tolist()
    n = args.new_tokens
    cached = decode_tokens_per_s(lambda: list(generate(ours, prompt, n, temperature=0)), n, device)
    no_cache = decode_tokens_per_s(lambda: recompute(ours, prompt, n), n, device)
    hf_ids = torch.tensor([prompt], device=device)
    hf = decode_tokens_per_s(lambda: peer.generate(hf_ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                                   pad_token_id=0, attention_mask=torch.ones_like(hf_ids)), n, device)
    result.update(decode_tok_s_ours_cache=round(cached, 1), decode_tok_s_ours_no_cache=round(no_cache, 1),
                  decode_tok_s_peer=round(hf, 1), decode_ratio=round(cached / hf, 3),
                  same_greedy_tokens=list(generate(ours, prompt, 16, temperature=0)) == recompute(ours, prompt, 16))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
