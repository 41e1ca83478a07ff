"""AdamW with 8-bit optimizer states: block-wise quantized moments (Dettmers et al. 2021, "8-bit Optimizers
via Block-wise Quantization"), written here on plain tensor ops.

    scratchllm train --preset tiny-cpu train.optimizer=adamw8bit

AdamW keeps two fp32 moments a parameter (8 bytes); here each moment is stored as one byte per
element plus one fp32 scale per block of `BLOCK` elements (≈ 2.03 bytes a parameter for both,
about a quarter). A step dequantizes a tensor's moments to fp32, does the ordinary AdamW update
(decoupled weight decay, bias correction), and quantizes the new moments again.

Why it stays accurate:
- **block-wise scales**: each block is divided by its own largest |value| before rounding, so one
  outlier costs precision in its block only, not across the whole tensor;
- **a dynamic code**: the 256 levels are not evenly spaced but dense near zero, a few per
  decade from 1e-7 to 1 (more levels for the larger decades, like a float's mantissa), because
  moments span many orders of magnitude within a block;
- the second moment, never negative, uses an unsigned code with no zero level, so 1/√v never
  divides by a rounded-away zero.
Tensors smaller than `min_8bit_size` elements (biases, norms) keep fp32 moments: their bytes do
not matter and quantizing them would only add error.

This module knows tensors and the update rule; it knows nothing of models or runs.

>>> import torch                  # 0.5 falls between two levels: it comes back as the nearer one
>>> q, scale = quantize(torch.tensor([0.5, -1.0, 0.001, 0.0]), SIGNED)
>>> q.dtype, dequantize(q, scale, SIGNED, 4)
(torch.uint8, tensor([ 0.4938, -1.0000,  0.0010,  0.0000]))
"""

from __future__ import annotations

import math

import torch

BLOCK = 256  # elements per scale: 4/256 bytes of overhead a moment; the paper's 2048 rounds a little coarser
DECADES = 7  # the code reaches down to 1e-7 of a block's largest value


def dynamic_code(signed: bool) -> torch.Tensor:
    """256 sorted levels in [-1, 1] (signed: with 0) or (0, 1] (unsigned): dense near zero, 1.0 exact.

    Decade d (values between 10^(d-7) and 10^(d-6)) gets levels in proportion to 2^d, so the
    relative spacing is finest for the values that dominate an update.
    """
    per_side = 127 if signed else 256
    weights = [2.0 ** d for d in range(DECADES)]
    counts = [max(1, round(per_side * w / sum(weights))) for w in weights]
    counts[-1] += per_side - sum(counts)  # rounding's remainder to the largest decade
    magnitudes = []
    for d, n in enumerate(counts):
        low = 10.0 ** (d - DECADES)
        # n levels from just above this decade's floor up to its top (the next decade's floor)
        magnitudes += (low * torch.linspace(1.0, 10.0, n + 1, dtype=torch.float64)[1:]).tolist()
    mags = torch.tensor(magnitudes, dtype=torch.float32)
    return torch.cat([-mags.flip(0), torch.zeros(1), mags]) if signed else mags


SIGNED, UNSIGNED = dynamic_code(True), dynamic_code(False)


def quantize(x: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (any shape) → (uint8 indices [blocks, BLOCK], fp32 scale a block): the nearest level of x / blockmax."""
    flat = x.reshape(-1).float()
    blocks = math.ceil(flat.numel() / BLOCK)
    padded = torch.nn.functional.pad(flat, (0, blocks * BLOCK - flat.numel())).view(blocks, BLOCK)
    scale = padded.abs().amax(dim=1).clamp(min=1e-30)
    code = code.to(x.device)
    # nearest level: bucketize against the midpoints between consecutive levels
    index = torch.bucketize(padded / scale[:, None], (code[1:] + code[:-1]) / 2)
    return index.to(torch.uint8), scale


def dequantize(index: torch.Tensor, scale: torch.Tensor, code: torch.Tensor, numel: int) -> torch.Tensor:
    """The fp32 values (flat, `numel` long) that `quantize` stored."""
    return (code.to(index.device)[index.long()] * scale[:, None]).reshape(-1)[:numel]


class AdamW8bit(torch.optim.Optimizer):
    """torch.optim.AdamW's update with block-wise 8-bit moments; parameter groups and state_dict as usual.

    State per parameter: "step", and either "m8"/"m_scale"/"v8"/"v_scale" (quantized) or
    "exp_avg"/"exp_avg_sq" (fp32, for tensors under `min_8bit_size` elements). All of it is saved
    and restored bit for bit, so a resumed run continues exactly.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, min_8bit_size: int = 4096):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      min_8bit_size=min_8bit_size))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        beta1, beta2 = group["betas"]
        g = p.grad.float()
        quantized = p.numel() >= group["min_8bit_size"]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            if quantized:
                state["m8"], state["m_scale"] = quantize(torch.zeros_like(g), SIGNED)
                state["v8"], state["v_scale"] = quantize(torch.zeros_like(g), UNSIGNED)
            else:
                state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(g), torch.zeros_like(g)
        state["step"] += 1
        t = float(state["step"])
        if quantized:
            m = dequantize(state["m8"], state["m_scale"], SIGNED, p.numel()).view_as(g)
            v = dequantize(state["v8"], state["v_scale"], UNSIGNED, p.numel()).view_as(g)
        else:
            m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        p.mul_(1 - group["lr"] * group["weight_decay"])  # decoupled decay, as torch.optim.AdamW
        denom = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
        p.addcdiv_(m.to(p.dtype), denom.to(p.dtype), value=-group["lr"] / (1 - beta1 ** t))
        if quantized:
            state["m8"], state["m_scale"] = quantize(m, SIGNED)
            state["v8"], state["v_scale"] = quantize(v, UNSIGNED)


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of all tensors in an optimizer's state (moments, scales, step counters)."""
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))
