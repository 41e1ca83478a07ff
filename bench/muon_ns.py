"""Muon's Newton–Schulz at GPT-2 small's shapes (CPU): where the singular values land (fp32: bf16
matmuls on a CPU without AMX are too slow to be worth it; tests/train/test_muon.py checks bf16's band),
on Gaussian matrices and on the real momentum of a model's first steps, and the FLOPs it adds.

The peer is the exact orthogonalisation U Vᵀ (torch.linalg.svd): its singular values are all 1.
The band [0.7, 1.2] is what the coefficients promise for singular values not far below the
largest; a real gradient's spectrum falls steeply, so its tail lands lower (NS₅(σ) ≈ 3.4445⁵·σ
for tiny σ): the fractions below say how much of a real update is orthogonalised.

    OMP_NUM_THREADS=2 python bench/muon_ns.py
"""

import json

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.muon import newton_schulz
from scratchllm.train.optim import hidden_matrices


def band(x: torch.Tensor) -> dict:
    s = torch.linalg.svdvals(x.float())
    return {"min": round(s.min().item(), 3), "max": round(s.max().item(), 3),
            "in_band": round(((s > 0.7) & (s < 1.2)).float().mean().item(), 3),
            "vs_UVt_fro": round((x.float() - exact(x)).norm().item() / exact(x).norm().item(), 3)}


def exact(g: torch.Tensor) -> torch.Tensor:
    u, _, vh = torch.linalg.svd(g.float(), full_matrices=False)
    return u @ vh


def ns_flops(rows: int, cols: int, steps: int = 5) -> int:
    m, n = min(rows, cols), max(rows, cols)
    return steps * (2 * m * m * n + 2 * m ** 3 + 2 * m * m * n)   # X Xᵀ, (XXᵀ)², (…)X


def main():
    torch.manual_seed(0)
    shapes = {"attn q/k/v/o 768x768": (768, 768), "mlp up 3072x768": (3072, 768), "mlp down 768x3072": (768, 3072)}
    for name, shape in shapes.items():
        g = torch.randn(shape)
        print(json.dumps({"matrix": f"gaussian {name}", "dtype": "float32", **band(newton_schulz(g))}), flush=True)
    # the real thing: the momentum (Nesterov, μ=0.95) after 3 steps of a 2-layer GPT-2-width model
    cfg = ModelConfig(n_layer=2, n_head=12, n_embd=768, vocab_size=4096, block_size=256)
    model = Transformer(cfg)
    mats = hidden_matrices(model)
    bufs = [torch.zeros_like(p) for p in mats]
    text = torch.randint(0, 4096, (8, 257))
    for _ in range(3):
        model.zero_grad()
        logits = model(text[:, :-1])
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), text[:, 1:].flatten()).backward()
        for b, p in zip(bufs, mats):
            b.mul_(0.95).add_(p.grad)
    names = {id(p): n for n, p in model.named_parameters()}
    for p, b in list(zip(mats, bufs))[:3]:   # q, k, v of block 0 (an SVD each: minutes on a loaded CPU)
        m = p.grad + 0.95 * b
        print(json.dumps({"matrix": f"momentum {names[id(p)]} {tuple(p.shape)}", "dtype": "float32",
                          **band(newton_schulz(m))}), flush=True)
    # FLOPs per optimizer step for GPT-2 small (12 layers) against one 12x1024 micro-batch's 6N+attn
    per_layer = 4 * ns_flops(768, 768) + 2 * ns_flops(3072, 768)
    step = 855e6 * 12 * 1024
    print(json.dumps({"gpt2_124m_newton_schulz_tflop_per_step": round(12 * per_layer / 1e12, 2),
                      "one_12x1024_micro_batch_tflop": round(step / 1e12, 2),
                      "overhead_at_grad_accum_1": round(12 * per_layer / step, 3),
                      "overhead_at_grad_accum_40": round(12 * per_layer / step / 40, 4)}))


if __name__ == "__main__":
    main()
