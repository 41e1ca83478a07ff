"""Position information: sinusoidal tables and rotary embeddings (RoPE).

Learned positions are a plain `nn.Embedding` in the transformer; this file holds the two
computed kinds. Both are tables built once for `block_size` positions and sliced per call,
so a forward with a KV cache at offset `start` reads rows `start .. start+T`.

RoPE rotates each (x[i], x[i + d/2]) pair of a query or key by an angle proportional to the
position, so the score q·k depends only on the *difference* of the two positions. We use the
"rotate half" pairing (GPT-NeoX, Hugging Face Llama), so Hugging Face weights load as they are.

>>> import torch
>>> cos, sin = rope_tables(head_dim=8, max_len=16)
>>> cos.shape, sin.shape
(torch.Size([16, 8]), torch.Size([16, 8]))
>>> q = torch.randn(1, 2, 16, 8)                  # [B, H, T, head_dim]
>>> apply_rope(q, cos, sin).shape
torch.Size([1, 2, 16, 8])
"""

from __future__ import annotations

import math

import torch

from scratchllm.errors import UserError


def sinusoidal_table(max_len: int, dim: int) -> torch.Tensor:
    """The fixed [max_len, dim] table of "Attention Is All You Need": sin on even, cos on odd columns."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    # Wavelengths form a geometric series from 2π to 10000·2π across the dimensions.
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def rope_frequencies(head_dim: int, theta: float = 10000.0, scaling: dict | None = None) -> torch.Tensor:
    """Inverse frequencies theta^(-2i/d) for i < d/2, optionally rescaled for longer contexts.

    `scaling` follows Hugging Face's `rope_scaling`: {"rope_type" or "type": "linear", "factor"}
    divides every frequency (positions are interpolated); "llama3" (Llama 3.1+) divides only the
    low frequencies, keeps the high ones and blends in between.
    """
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    scaling = scaling or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return inv_freq.float()
    factor = float(scaling["factor"])
    if kind == "linear":
        return (inv_freq / factor).float()
    if kind == "llama3":
        return _llama3_frequencies(inv_freq, factor, scaling).float()
    raise UserError(f"model.rope_scaling type '{kind}' is not supported; use 'linear' or 'llama3'")


def _llama3_frequencies(inv_freq: torch.Tensor, factor: float, scaling: dict) -> torch.Tensor:
    low = float(scaling.get("low_freq_factor", 1.0))
    high = float(scaling.get("high_freq_factor", 4.0))
    old_len = float(scaling.get("original_max_position_embeddings", 8192))
    wavelen = 2 * math.pi / inv_freq
    # Long wavelengths (beyond the original context) are interpolated, short ones kept as they were.
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    # In between, blend linearly in old_len/wavelen between the two regimes.
    smooth = (old_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return torch.where(medium, blended, scaled)


def rope_tables(head_dim: int, max_len: int, theta: float = 10000.0,
                scaling: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [max_len, head_dim] (each angle repeated for both halves of the head)."""
    inv_freq = rope_frequencies(head_dim, theta, scaling)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, T, head_dim] by the angles of its positions (cos, sin: [T, head_dim])."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    # subtle: cast the fp32 tables to x's dtype so bf16 autocast keeps q and k in bf16.
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
