"""Weight-only quantized weights: int8 per output channel, int4 group-wise, and the linear layer using them.

A weight W is [out, in], as `nn.Linear` stores it. Each format turns W into small integer
codes plus a few floating-point parameters, and back (`dequantize`):

- **int8, per output channel (absmax).** One scale per row, s = max|w| / 127; code
  q = round(w / s) in [-127, 127]; ŵ = q·s. Symmetric: zero stays exactly zero.
- **int4, group-wise, asymmetric.** Each row is cut into groups of g consecutive inputs
  (g = 32, 64 or 128). A group's range [min(w, 0), max(w, 0)] is split into 15 steps:
  s = (max - min) / 15, zero point z = round(-min / s) in 0..15, code q = clamp(round(w / s) + z, 0, 15),
  ŵ = (q - z)·s. Two codes share a byte (the even column in the low nibble). Scales are kept
  in fp16, rounded *up*, so the grid still covers the whole range.

Both round to the nearest grid point, so |w - ŵ| ≤ s/2 for every weight (the bound the tests
check). `QuantizedLinear` keeps only codes and parameters and dequantizes on each forward: the
weight in memory and on disk is 8 or ~4.3 bits, the matmul runs in the input's dtype.

Boundary: this file defines the formats, the packing, the layer and how a run of kind
"quantized" is rebuilt (`load_quantized`, registered in train/checkpoint.py's RUN_KINDS). *Which*
codes to pick (round-to-nearest or GPTQ's error feedback) is inference/quantize.py's job; the
embedding and the output head are never quantized here (GPTQ leaves them too: they are a
lookup and the most sensitive matrix).

>>> import torch
>>> w = torch.randn(4, 64)
>>> codes, scale, zero = quantize_weight(w, bits=4, group_size=32)
>>> bool((dequantize_codes(codes, scale, zero) - w).abs().le(scale.float().repeat_interleave(32, 1) / 2).all())
True
>>> bool(unpack_int4(pack_int4(codes)).equal(codes))
True
>>> layer = QuantizedLinear.from_linear(torch.nn.Linear(64, 8), bits=8)
>>> layer(torch.randn(2, 64)).shape
torch.Size([2, 8])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model
from torch import nn

from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer

INT4_MAX = 15          # codes 0..15
INT8_MAX = 127         # codes -127..127 (−128 unused, so the grid is symmetric)
GROUP_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class QuantSpec:
    """What a quantized run holds: `bits` 8 (per channel) or 4 (groups of `group_size` inputs)."""

    bits: int
    group_size: int | None = None   # int4 default: 128
    method: str = "rtn"

    def __post_init__(self):
        if self.bits == 4 and self.group_size is None:
            object.__setattr__(self, "group_size", 128)
        if self.bits not in (8, 4):
            raise UserError(f"--bits {self.bits} is not supported; use 8 (per-channel int8) or 4 (group-wise int4)")
        if self.bits == 8 and self.group_size is not None:
            raise UserError("int8 has one scale per output channel, not groups; drop --group-size (it is for --bits 4)")
        if self.bits == 4 and self.group_size not in GROUP_SIZES:
            raise UserError(f"--group-size {self.group_size} is not supported for int4; use one of {list(GROUP_SIZES)}")
        if self.method not in ("rtn", "gptq"):
            raise UserError(f"--method {self.method} is unknown; use rtn (round-to-nearest) or gptq (needs --calib)")


# --- parameters and codes ------------------------------------------------------------------

def int8_scale(w: torch.Tensor) -> torch.Tensor:
    """Per-row absmax scale [out] (fp32) of w [out, in]; an all-zero row gets scale 1."""
    absmax = w.detach().float().abs().amax(dim=-1)
    return torch.where(absmax > 0, absmax / INT8_MAX, torch.ones_like(absmax))


def _fp16_at_least(x: torch.Tensor) -> torch.Tensor:
    """x in fp16, rounded up where rounding to nearest went down (the grid must cover the range)."""
    h = x.half()
    return torch.where(h.float() < x, torch.nextafter(h, torch.full_like(h, float("inf"))), h)


def int4_params(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale (fp16) and zero point (uint8) of each row of groups w [..., g], reduced over the last dim."""
    w = w.detach().float()
    lo = w.amin(dim=-1).clamp(max=0)      # the range includes 0, so z lands in 0..15 and 0 is exact
    hi = w.amax(dim=-1).clamp(min=0)
    scale = _fp16_at_least(torch.where(hi > lo, (hi - lo) / INT4_MAX, torch.ones_like(hi)))
    zero = torch.round(-lo / scale.float()).clamp(0, INT4_MAX).to(torch.uint8)
    return scale, zero


def quantize_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None) -> torch.Tensor:
    """Round w to the nearest code of the grid given by (scale, zero), elementwise (shapes broadcast).

    zero None = symmetric int8 codes; else asymmetric int4 codes (uint8 holding 0..15).
    """
    if zero is None:
        return torch.round(w.float() / scale.float()).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    q = torch.round(w.float() / scale.float()) + zero.float()
    return q.clamp(0, INT4_MAX).to(torch.uint8)


def _expand(param: torch.Tensor, n_in: int) -> torch.Tensor:
    """Per-row [out] or per-group [out, n_groups] parameters repeated to one per weight [out, in]."""
    if param.dim() == 1:
        return param[:, None]
    return param.repeat_interleave(n_in // param.shape[1], dim=1)


def dequantize_codes(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """ŵ [out, in] from codes [out, in]: q·s (int8) or (q - z)·s (int4, groups along `in`)."""
    n_in = codes.shape[-1]
    w = codes.float()
    if zero is not None:
        w = w - _expand(zero, n_in).float()
    return (w * _expand(scale, n_in).float()).to(dtype)


def quantize_weight(w: torch.Tensor, bits: int, group_size: int | None = None):
    """Round-to-nearest: (codes [out, in], scale, zero or None) of w [out, in] in the given format."""
    if bits == 8:
        scale = int8_scale(w)
        return quantize_codes(w, scale[:, None], None), scale, None
    out, n_in = w.shape
    groups = w.reshape(out, n_in // group_size, group_size)
    scale, zero = int4_params(groups)
    codes = quantize_codes(groups, scale[..., None], zero[..., None]).reshape(out, n_in)
    return codes, scale, zero


# --- packing: two int4 codes a byte --------------------------------------------------------

def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """[out, in] codes 0..15 → [out, in/2] bytes: column 2j in the low nibble, 2j+1 in the high one."""
    codes = codes.to(torch.uint8)
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack_int4`: [out, in/2] bytes → [out, in] codes."""
    low, high = packed & 0x0F, packed >> 4
    return torch.stack([low, high], dim=-1).reshape(packed.shape[0], -1)


# --- the layer -----------------------------------------------------------------------------

class QuantizedLinear(nn.Module):
    """y = x Ŵᵀ + b with Ŵ rebuilt from codes on every call (weight-only quantization).

    Buffers (what model.safetensors stores): int8 → `qweight` int8 [out, in], `scale` fp32 [out];
    int4 → `qweight` uint8 [out, in/2] (packed), `scale` fp16 and `zero` uint8 [out, in/g].
    """

    def __init__(self, in_features: int, out_features: int, bits: int, group_size: int | None = None,
                 bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.bits, self.group_size = in_features, out_features, bits, group_size
        if bits == 8:
            self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
            self.register_buffer("scale", torch.ones(out_features))
            self.zero = None
        else:
            groups = in_features // group_size
            self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
            self.register_buffer("scale", torch.ones(out_features, groups, dtype=torch.float16))
            self.register_buffer("zero", torch.zeros(out_features, groups, dtype=torch.uint8))
        self.bias = nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None

    @classmethod
    def from_codes(cls, codes, scale, zero, bias: torch.Tensor | None, group_size: int | None = None):
        """A layer holding the given codes [out, in] and parameters (from quantize_weight or GPTQ)."""
        out, n_in = codes.shape
        layer = cls(n_in, out, 8 if zero is None else 4, group_size, bias is not None)
        layer.qweight.copy_(codes if zero is None else pack_int4(codes))
        layer.scale.copy_(scale)
        if zero is not None:
            layer.zero.copy_(zero)
        if bias is not None:
            layer.bias.data.copy_(bias.detach())
        return layer

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int, group_size: int | None = None) -> "QuantizedLinear":
        """Round-to-nearest quantization of an `nn.Linear`."""
        codes, scale, zero = quantize_weight(linear.weight.detach(), bits, group_size)
        return cls.from_codes(codes, scale, zero, linear.bias, group_size)

    def codes(self) -> torch.Tensor:
        return self.qweight if self.bits == 8 else unpack_int4(self.qweight)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize_codes(self.codes(), self.scale, self.zero, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantize(x.dtype), bias)

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.bits == 4 else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}{group}"


# --- which layers, and the run loader ------------------------------------------------------

def quantizable_linears(model: Transformer) -> list[tuple[str, nn.Linear]]:
    """(name, layer) of every linear inside the blocks, in forward order (embedding and head excluded)."""
    return [(name, m) for name, m in model.named_modules()
            if name.startswith("blocks.") and isinstance(m, (nn.Linear, QuantizedLinear))]


def check_group_size(model: Transformer, spec: QuantSpec) -> None:
    """Every quantized layer's input width must be a multiple of the group size."""
    if spec.bits != 4:
        return
    for name, m in quantizable_linears(model):
        if m.in_features % spec.group_size:
            raise UserError(f"--group-size {spec.group_size} does not divide the input width {m.in_features} of "
                            f"{name}; pick a group size that divides every layer's width (e.g. 32)")


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def quantized_skeleton(model: Transformer, spec: QuantSpec) -> Transformer:
    """`model` with every block linear replaced by an empty QuantizedLinear of the same shape."""
    check_group_size(model, spec)
    for name, m in quantizable_linears(model):
        replace_module(model, name, QuantizedLinear(m.in_features, m.out_features, spec.bits, spec.group_size,
                                                    m.bias is not None))
    return model


def spec_state(spec: QuantSpec) -> dict:
    """What state.json records about a quantized checkpoint (read back by `load_quantized`)."""
    return {"kind": "quantized", "quantization": asdict(spec)}


def load_quantized(config, ckpt, run_dir: Path) -> Transformer:
    """RUN_KINDS loader for kind "quantized": the model with QuantizedLinear layers, codes loaded strictly.

    `ckpt` is train/checkpoint.py's verified Checkpoint (its `.path` and `.state` are all we read).
    """
    try:
        spec = QuantSpec(**ckpt.state["quantization"])
    except (KeyError, TypeError):
        raise UserError(f"checkpoint '{ckpt.path}' is marked quantized but its state.json has no valid "
                        f"'quantization' entry ({json.dumps(ckpt.state.get('quantization'))}); re-run scratchllm quantize") from None
    model = quantized_skeleton(Transformer(config.model), spec)
    try:
        load_model(model, str(Path(ckpt.path) / "model.safetensors"), strict=True)
    except RuntimeError as e:
        raise UserError(f"checkpoint '{ckpt.path}' does not fit a {spec.bits}-bit model of config.toml's shape "
                        f"({str(e).splitlines()[0]}); re-run scratchllm quantize") from None
    return model
