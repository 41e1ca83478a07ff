"""NF4, QLoRA's 4-bit NormalFloat (Dettmers et al. 2023), with double quantization of the scales.

Pretrained weights are close to normally distributed, so NF4's 16 levels are quantiles of a
normal distribution, scaled to [-1, 1] (with an exact 0): each level is used about equally
often, which is what makes 4 bits information-theoretically optimal for such data.

    weight ─► blocks of 64 ─► absmax c per block, x / c ─► nearest of the 16 NF4 levels (4 bits)
    the absmax values c ─► minus their mean ─► blocks of 256 ─► int8 with one fp32 scale each

Storage per parameter: 4 bits + 8/64 (int8 absmax) + 32/(64·256) (fp32 scale of the absmax)
= 4.127 bits, the paper's figure (4.5 bits without double quantization: a fp32 absmax / 64).
The paper stores the second level in FP8; we use symmetric int8, which costs the same bits.
For the matmul the weight is dequantized to the compute dtype (bf16 on CUDA, fp32 on the CPU,
where bf16 matmuls are slow) and never kept: that is where QLoRA's memory saving comes from.

>>> import torch
>>> w = torch.randn(256, 256)
>>> q = NF4Tensor.quantize(w)
>>> round(q.bits_per_parameter(), 3)
4.127
>>> (q.dequantize() - w).abs().max() < 0.25 * w.abs().max()
tensor(True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The NF4 code book as published (QLoRA, appendix E; bitsandbytes' NF4 table), ascending.
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
BLOCK = 64          # weights per absmax
SCALE_BLOCK = 256   # absmax values per second-level scale


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    return F.pad(x, (0, -x.numel() % multiple))


_PAIR_TABLES: dict = {}


def _pair_table(device, dtype) -> torch.Tensor:
    """[256, 2]: the (high nibble, low nibble) NF4 levels of every byte value, cached per device/dtype."""
    key = (str(device), dtype)
    if key not in _PAIR_TABLES:
        code = torch.tensor(NF4_CODE, dtype=torch.float32)
        byte = torch.arange(256)
        _PAIR_TABLES[key] = torch.stack([code[byte >> 4], code[byte & 0xF]], dim=1).to(device=device, dtype=dtype)
    return _PAIR_TABLES[key]


@dataclass
class NF4Tensor:
    """A weight in NF4: packed 4-bit codes, int8 absmax, fp32 scales of those, and their mean."""
    codes: torch.Tensor        # uint8 [n/2]: two 4-bit indices per byte (high nibble first)
    absmax_q: torch.Tensor     # int8 [n/64 padded to 256]: quantized (absmax - offset)
    absmax_scale: torch.Tensor  # fp32 [n/64/256]: absmax of each block of 256 absmax values / 127
    absmax_offset: torch.Tensor  # fp32 scalar: mean of the absmax values
    shape: tuple[int, ...]

    @classmethod
    @torch.no_grad()
    def quantize(cls, weight: torch.Tensor) -> "NF4Tensor":
        flat = _pad_to(weight.detach().float().reshape(-1), BLOCK).view(-1, BLOCK)
        absmax = flat.abs().amax(dim=1).clamp_min(1e-12)
        code = torch.tensor(NF4_CODE, device=weight.device)
        normed = flat / absmax[:, None]
        # Nearest level: midpoints between neighbours split [-1, 1] into 16 buckets.
        idx = torch.bucketize(normed, (code[1:] + code[:-1]) / 2).to(torch.uint8).reshape(-1)
        codes = (idx[0::2] << 4) | idx[1::2]
        # Double quantization: the absmax values are positive and similar, so centre them first.
        offset = absmax.mean()
        centred = _pad_to(absmax - offset, SCALE_BLOCK).view(-1, SCALE_BLOCK)
        scale = (centred.abs().amax(dim=1) / 127).clamp_min(1e-12)
        absmax_q = torch.round(centred / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(-1)
        return cls(codes, absmax_q, scale, offset, tuple(weight.shape))

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def stored_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.absmax_q, self.absmax_scale, self.absmax_offset))

    def bits_per_parameter(self) -> float:
        return 8 * self.stored_bytes() / self.numel()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        n_blocks = -(-self.numel() // BLOCK)
        absmax = (self.absmax_q.float().view(-1, SCALE_BLOCK) * self.absmax_scale[:, None]).reshape(-1)
        absmax = absmax[:n_blocks] + self.absmax_offset
        # One lookup per byte: row b of the pair table holds the two levels byte b packs.
        values = _pair_table(self.codes.device, dtype)[self.codes.long()].view(-1, BLOCK) * absmax[:, None].to(dtype)
        return values.reshape(-1)[: self.numel()].view(self.shape)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"codes": self.codes, "absmax_q": self.absmax_q, "absmax_scale": self.absmax_scale,
                "absmax_offset": self.absmax_offset}


class NF4Linear(nn.Module):
    """A frozen linear layer stored in NF4; the weight is dequantized for each matmul and dropped."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q = NF4Tensor.quantize(linear.weight)
        self._shape = q.shape
        for name, t in q.tensors().items():
            self.register_buffer(name, t)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def nf4(self) -> NF4Tensor:
        return NF4Tensor(self.codes, self.absmax_q, self.absmax_scale, self.absmax_offset, self._shape)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (fp32): for merging and inspection, not the forward."""
        return self.dequantize()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.nf4().dequantize(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # bf16 where the matmul runs in bf16 (CUDA autocast); fp32 on the CPU.
        dtype = torch.bfloat16 if x.is_cuda else x.dtype
        y = _DequantizedMatmul.apply(x.to(dtype), self, dtype)
        return y if self.bias is None else y + self.bias.to(dtype)


class _DequantizedMatmul(torch.autograd.Function):
    """x Wᵀ with W dequantized for the product, and dequantized again for the backward.

    F.linear would save the full-precision W for the backward of every layer until the backward
    reaches it: a 16-bit copy of the whole base, which is the memory QLoRA exists to avoid.
    Only x's gradient is needed (the base is frozen), and it needs W, so W is rebuilt from 4 bits.
    """

    @staticmethod
    def forward(ctx, x, layer, dtype):
        ctx.layer, ctx.dtype = layer, dtype
        return x @ layer.dequantize(dtype).t()

    @staticmethod
    def backward(ctx, grad):
        return grad @ ctx.layer.dequantize(ctx.dtype), None, None


def quantize_linears(model: nn.Module, names: list[str]) -> None:
    """Replace the named `nn.Linear` layers of `model` by `NF4Linear`, in place."""
    for name in names:
        parent, _, child = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        setattr(holder, child, NF4Linear(getattr(holder, child)))


def block_linears(model: nn.Module) -> list[str]:
    """The linear layers inside the transformer blocks: what QLoRA stores in NF4.

    Embeddings and lm_head stay in full precision, as in the paper (they are a small share of a
    large model, and a tied lm_head is the embedding table).
    """
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith("blocks.")]
