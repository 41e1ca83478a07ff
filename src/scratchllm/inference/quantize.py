"""Choosing the codes of a quantized model: round-to-nearest (RTN) and GPTQ.

RTN rounds every weight to its nearest grid point independently (model/quant.py's
`quantize_weight`). GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for
Generative Pre-trained Transformers") minimizes the layer's *output* error ‖XWᵀ - XŴᵀ‖² on
calibration inputs X instead. With H = 2XᵀX (the Hessian of that error), it quantizes W one
input column at a time and spreads each column's rounding error over the columns not yet
quantized, weighted by the inverse Hessian, so later columns compensate for earlier ones:

    for column j:   q_j = quant(w_j);   e = (w_j - q_j) / [H⁻¹]_jj;   w_{j+1..} -= e · [H⁻¹]_{j, j+1..}

H⁻¹'s rows are read from its upper Cholesky factor (numerically stable, as in the paper), and
H gets damping λ·mean(diag H) on its diagonal. Columns are processed in blocks of 128 with the
error pushed to later blocks in one matmul ("lazy batch updates"). Group-wise int4 takes each
group's scale and zero point when the loop reaches the group's first column, from the weights
as the error feedback has left them (GPTQ's own choice); int8 fixes its per-row scales up front.

Layers are quantized block by block: each block's inputs are recorded while running the model
whose earlier blocks are already quantized, so a block learns to correct what came before.

Boundary: the codes and formats are model/quant.py's; this file knows nothing of files or runs
(inference/quantize_run.py reads text and writes the run directory).

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.model.quant import QuantSpec
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=64, block_size=16)).eval()
>>> calib = [torch.randint(0, 64, (2, 16))]
>>> quantize_model(model, QuantSpec(bits=4, group_size=32, method="gptq"), calib).blocks[0].mlp.up
QuantizedLinear(in_features=32, out_features=128, bits=4, group_size=32)
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from scratchllm.model.quant import (QuantizedLinear, QuantSpec, check_group_size, int4_params,
                                    int8_scale, quantizable_linears, quantize_codes, replace_module)
from scratchllm.model.transformer import Transformer

GPTQ_BLOCK = 128   # columns per lazy batch update; a multiple of every group size


def quantize_rtn(model: Transformer, spec: QuantSpec) -> Transformer:
    """Replace every block linear of `model` by its round-to-nearest QuantizedLinear (in place)."""
    check_group_size(model, spec)
    for name, m in quantizable_linears(model):
        replace_module(model, name, QuantizedLinear.from_linear(m, spec.bits, spec.group_size))
    return model


def gptq_weight(w: torch.Tensor, hessian: torch.Tensor, bits: int, group_size: int | None = None,
                damp: float = 0.01):
    """GPTQ codes of w [out, in] given H = 2XᵀX [in, in]: returns (codes, scale, zero or None) like RTN."""
    W = w.detach().float().clone()
    H = hessian.detach().float().clone()
    out, n_in = W.shape
    dead = torch.diag(H) == 0            # an input that is always 0: its weights cannot matter
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H.diagonal().add_(damp * torch.diag(H).mean())
    # Upper Cholesky factor of H⁻¹: row j holds what column j's error does to the columns after it.
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)

    codes = torch.zeros(out, n_in, dtype=torch.int8 if bits == 8 else torch.uint8, device=W.device)
    if bits == 8:
        scale, zero = int8_scale(W), None
        scales, zeros = scale, None   # one grid per row, fixed before any feedback
    else:
        scales = torch.zeros(out, n_in // group_size, dtype=torch.float16, device=W.device)
        zeros = torch.zeros(out, n_in // group_size, dtype=torch.uint8, device=W.device)
    for i1 in range(0, n_in, GPTQ_BLOCK):
        i2 = min(i1 + GPTQ_BLOCK, n_in)
        W1, Err1, Hinv1 = W[:, i1:i2].clone(), torch.zeros(out, i2 - i1), Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if bits == 4 and col % group_size == 0:
                # subtle: a group's grid comes from its columns *after* the feedback so far, not the originals.
                scale, zero = int4_params(W1[:, i:i + group_size])
                scales[:, col // group_size], zeros[:, col // group_size] = scale, zero
            w_col = W1[:, i]
            q = quantize_codes(w_col, scale, zero)
            codes[:, col] = q
            w_hat = (q.float() - (0 if zero is None else zero.float())) * scale.float()
            err = (w_col - w_hat) / Hinv1[i, i]
            W1[:, i:] -= err[:, None] * Hinv1[i, i:][None, :]
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]      # the block's error, pushed to every later column at once
    return codes, scales, zeros


class _HessianRecorder:
    """Forward hook accumulating H = 2/n · Σ xxᵀ over every input row a linear layer sees."""

    def __init__(self, n_in: int):
        self.H = torch.zeros(n_in, n_in)
        self.rows = 0

    def __call__(self, module, inputs, output):
        x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).float()
        self.H = self.H.to(x.device)
        n = x.shape[0]
        # Running mean, so H stays the same size of number however much text is seen.
        self.H *= self.rows / (self.rows + n)
        self.rows += n
        self.H += (2.0 / self.rows) * x.T @ x


@torch.no_grad()
def _block_hessians(model: Transformer, layers: list[tuple[str, nn.Linear]],
                    calib: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    recorders = {name: _HessianRecorder(m.in_features) for name, m in layers}
    handles = [m.register_forward_hook(recorders[name]) for name, m in layers]
    try:
        for ids in calib:
            model(ids)
    finally:
        for h in handles:
            h.remove()
    return {name: r.H for name, r in recorders.items()}


def quantize_gptq(model: Transformer, spec: QuantSpec, calib: list[torch.Tensor], damp: float = 0.01) -> Transformer:
    """GPTQ every block linear of `model` (in place), block by block, on calibration ids [B, T] batches."""
    check_group_size(model, spec)
    for b in range(model.config.n_layer):
        layers = [(n, m) for n, m in quantizable_linears(model) if n.startswith(f"blocks.{b}.")]
        hessians = _block_hessians(model, layers, calib)
        for name, m in layers:
            codes, scale, zero = gptq_weight(m.weight, hessians[name], spec.bits, spec.group_size, damp)
            replace_module(model, name, QuantizedLinear.from_codes(codes, scale, zero, m.bias, spec.group_size))
    return model


def quantize_model(model: Transformer, spec: QuantSpec, calib: list[torch.Tensor] | None = None) -> Transformer:
    """Quantize by `spec.method`: "rtn", or "gptq" (needs `calib`, a list of id batches [B, T])."""
    if spec.method == "gptq":
        return quantize_gptq(model, spec, calib)
    return quantize_rtn(model, spec)

