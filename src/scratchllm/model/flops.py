"""Counting compute: training FLOPs per token and model FLOPs utilization (MFU).

A matmul of an [m, n] weight with one token's vector costs 2·m·n FLOPs forward and twice that
backward (gradients for the input and for the weight): 6 FLOPs per weight per token, hence the
6N term (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022, appendix B). Attention adds the
QKᵀ and AV products, which have no weights: 2·T·hd each per head forward, ×3 with backward,
= 12·L·H·hd·T per token at context T. Like nanoGPT's `estimate_mfu`, we ignore the causal
mask's halving, norms, softmax and embedding lookups.

>>> from scratchllm.model.config import ModelConfig
>>> cfg = ModelConfig(n_layer=12, n_head=12, n_embd=768)
>>> flops_per_token(cfg, n_matmul_params=85_000_000, seq_len=1024)
623246208
>>> round(mfu(flops_per_token=6e8, tokens_per_s=1e6, peak_flops=989e12), 3)
0.607
"""

from __future__ import annotations

from scratchllm.model.config import ModelConfig

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' datasheets, for MFU on known GPUs.
# Checked in order: a more specific name ("H100 PCIE") must come before the name it contains.
PEAK_BF16_FLOPS = {
    "H100 PCIE": 756e12,
    "H100": 989e12,   # SXM
    "H200": 989e12,
    "A100": 312e12,
}


def flops_per_token(cfg: ModelConfig, n_matmul_params: int, seq_len: int) -> int:
    """6N + 12·L·H·hd·T: training (forward + backward) FLOPs for one token at context seq_len."""
    return 6 * n_matmul_params + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float) -> float:
    """Model FLOPs utilization: the fraction of the device's peak that the training step achieved."""
    return flops_per_token * tokens_per_s / peak_flops


def peak_flops(device_name: str) -> float | None:
    """The bf16 peak for a device name like 'NVIDIA H100 80GB HBM3', or None if unknown."""
    for key, value in PEAK_BF16_FLOPS.items():
        if key in device_name.upper():
            return value
    return None
