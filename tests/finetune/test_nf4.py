"""NF4 and QLoRA: the code book, the round trip, double quantization's bytes, a QLoRA forward."""

from __future__ import annotations

import pytest
import torch
from ft_helpers import llama_config, tiny_model

from scratchllm.model import nf4
from scratchllm.model.lora import LoraConfig, apply_lora, lora_layers
from scratchllm.model.nf4 import NF4_CODE, NF4Linear, NF4Tensor, block_linears, quantize_linears

# bitsandbytes' NF4 table (functional.py, get_4bit_type("nf4")), as published with QLoRA.
PUBLISHED = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
             0.7229568362236023, 1.0]


def test_code_book_is_the_published_table_and_its_construction():
    assert list(NF4_CODE) == PUBLISHED
    # The paper's construction: quantiles of N(0, 1), 8 positive and 7 negative levels plus an exact
    # zero, from offset 0.5·(1/32 + 1/30) ≈ 0.9677 (bitsandbytes' create_normal_map), scaled to [-1, 1].
    normal = torch.distributions.Normal(0.0, 1.0)
    offset = torch.tensor(0.9677083, dtype=torch.float64)
    pos = normal.icdf(torch.linspace(offset.item(), 0.5, 9, dtype=torch.float64)[:-1].float()).double()
    neg = -normal.icdf(torch.linspace(offset.item(), 0.5, 8, dtype=torch.float64)[:-1].float()).double()
    values = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    assert torch.allclose(values / values.abs().max(), torch.tensor(PUBLISHED, dtype=torch.float64), atol=1e-5)


def test_round_trip_is_within_half_a_level():
    w = torch.randn(128, 256, generator=torch.Generator().manual_seed(0))
    q = NF4Tensor.quantize(w)
    back = q.dequantize()
    assert back.shape == w.shape
    # each value lands within half the widest gap of the code book times its block's absmax (plus the
    # small error of the double-quantized absmax)
    absmax = w.reshape(-1, 64).abs().amax(1, keepdim=True)
    widest_half_gap = max(b - a for a, b in zip(PUBLISHED, PUBLISHED[1:])) / 2
    assert ((back - w).reshape(-1, 64).abs() <= widest_half_gap * absmax * 1.02 + 1e-3).all()
    assert (back - w).pow(2).mean() / w.pow(2).mean() < 0.012     # ~1% relative error for normal weights
    # NF4's normal quantiles beat 16 evenly spaced levels (absmax int4) on normal weights
    scale = absmax / 7
    uniform = (torch.round(w.reshape(-1, 64) / scale).clamp(-8, 7) * scale).view_as(w)
    assert (back - w).pow(2).mean() < 0.8 * (uniform - w).pow(2).mean()
    exact = NF4Tensor.quantize(torch.tensor(PUBLISHED).repeat(4 * 64 * 4).view(64, -1))  # levels map to themselves
    assert torch.allclose(exact.dequantize(), torch.tensor(PUBLISHED).repeat(4 * 64 * 4).view(64, -1), atol=2e-3)


def test_double_quantization_stored_bytes():
    q = NF4Tensor.quantize(torch.randn(256, 256))
    n = 256 * 256
    assert q.codes.dtype == torch.uint8 and q.codes.numel() == n // 2            # 4 bits a weight
    assert q.absmax_q.dtype == torch.int8 and q.absmax_q.numel() == n // 64      # 8 bits per 64 weights
    assert q.absmax_scale.dtype == torch.float32 and q.absmax_scale.numel() == n // 64 // 256
    assert q.stored_bytes() == n // 2 + n // 64 + 4 * (n // 64 // 256) + 4
    assert abs(q.bits_per_parameter() - (4 + 8 / 64 + 32 / (64 * 256))) < 1e-3   # 4.127


def test_qlora_forward_is_close_to_the_base_and_trains():
    model = tiny_model(llama_config(n_embd=64, mlp_hidden=128))
    idx = torch.randint(0, 320, (2, 16), generator=torch.Generator().manual_seed(0))
    base = model(idx)
    quantize_linears(model, block_linears(model))
    assert all(isinstance(model.get_submodule(n), NF4Linear) for n in ["blocks.0.attn.q", "blocks.1.mlp.down"])
    apply_lora(model, LoraConfig(r=4, targets=["q", "v"]))
    out = model(idx)
    assert (out - base).norm() / base.norm() < 0.1     # 4-bit weights in every layer: ~5% on this model
    assert torch.allclose(out.softmax(-1), base.softmax(-1), atol=0.02)
    out.sum().backward()                            # gradients reach the adapters through the NF4 base
    assert all(layer.lora_B.grad is not None for layer in lora_layers(model).values())


def test_nf4_linear_gradient_is_the_dequantized_weights():
    torch.manual_seed(0)
    dense = torch.nn.Linear(64, 32)
    layer = NF4Linear(dense)
    x = torch.randn(5, 64, requires_grad=True)
    layer(x).square().sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ref = torch.nn.functional.linear(x2, layer.dequantize(), dense.bias)
    ref.square().sum().backward()
    assert torch.allclose(layer(x), ref, atol=1e-5) and torch.allclose(x.grad, x2.grad, atol=1e-4)


def _naive_nf4(w: torch.Tensor):
    """QLoRA's recipe written out elementwise: (level index per weight, int8 absmax, scales, offset, ŵ)."""
    flat = w.double().reshape(-1)
    flat = torch.cat([flat, flat.new_zeros(-len(flat) % 64)]).view(-1, 64)
    absmax = flat.abs().amax(1)
    levels = torch.tensor(PUBLISHED, dtype=torch.float64)
    index = (flat[..., None] / absmax[:, None, None] - levels).abs().argmin(-1)    # nearest level
    offset = absmax.mean()
    centred = absmax - offset
    centred = torch.cat([centred, centred.new_zeros(-len(centred) % 256)]).view(-1, 256)
    scale = centred.abs().amax(1) / 127
    absmax_q = torch.round(centred / scale[:, None]).reshape(-1)
    absmax_back = (absmax_q.view(-1, 256) * scale[:, None]).reshape(-1)[: len(absmax)] + offset
    w_hat = (levels[index] * absmax_back[:, None]).reshape(-1)[: w.numel()].view(w.shape)
    return index.reshape(-1), absmax_q, scale, offset, w_hat


def test_quantize_and_dequantize_equal_the_recipe_written_out():
    # 300 blocks of 64 (more than one second-level block of 256) and a size that needs padding.
    for shape in [(300, 64), (7, 45)]:
        w = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.5, 2.0, shape[1])
        q = NF4Tensor.quantize(w)
        index, absmax_q, scale, offset, w_hat = _naive_nf4(w)
        unpacked = torch.stack([q.codes >> 4, q.codes & 0xF], dim=1).reshape(-1).long()   # high nibble first
        assert torch.equal(unpacked, index)
        assert q.absmax_q.dtype == torch.int8 and torch.equal(q.absmax_q.long(), absmax_q.long())
        torch.testing.assert_close(q.absmax_scale.double(), scale, rtol=1e-6, atol=0)
        assert q.absmax_offset.item() == pytest.approx(offset.item(), rel=1e-6)
        torch.testing.assert_close(q.dequantize().double(), w_hat, rtol=1e-5, atol=1e-6)
        assert q.dequantize(torch.bfloat16).dtype == torch.bfloat16 and q.shape == shape
        assert q.numel() == w.numel()


def test_an_all_zero_weight_stays_zero():
    q = NF4Tensor.quantize(torch.zeros(4, 64))
    assert torch.equal(q.dequantize(), torch.zeros(4, 64))


def test_nf4_linear_keeps_shape_bias_and_dequantized_weight():
    torch.manual_seed(2)
    dense = torch.nn.Linear(64, 8)
    layer = NF4Linear(dense)
    assert (layer.in_features, layer.out_features) == (64, 8) and not layer.bias.requires_grad
    assert torch.equal(layer.bias, dense.bias) and torch.equal(layer.weight, NF4Tensor.quantize(dense.weight).dequantize())
    x = torch.randn(3, 64)
    torch.testing.assert_close(layer(x), x @ layer.weight.t() + dense.bias)
    no_bias = NF4Linear(torch.nn.Linear(64, 8, bias=False))
    assert no_bias.bias is None and torch.equal(no_bias(x), x @ no_bias.weight.t())
    names = block_linears(tiny_model(llama_config()))
    assert names and all(n.startswith("blocks.") for n in names) and "lm_head" not in names


def test_nf4_linear_backward_in_bf16_uses_the_bf16_weight():
    torch.manual_seed(3)
    layer = NF4Linear(torch.nn.Linear(64, 16))
    x = torch.randn(4, 64, dtype=torch.bfloat16, requires_grad=True)
    y = layer(x)
    assert y.dtype == torch.bfloat16                     # the bias is cast too
    y.float().square().sum().backward()
    w = layer.dequantize(torch.bfloat16)
    want = (2 * (x.detach() @ w.t() + layer.bias.to(torch.bfloat16)).float()).to(torch.bfloat16) @ w
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad.float(), want.float(), rtol=2e-2, atol=2e-2)


def test_level_tables_are_built_per_device_and_dtype(monkeypatch):
    monkeypatch.setattr(nf4, "_PAIR_TABLES", {})         # built here, not found in another test's cache
    w = torch.randn(4, 64, generator=torch.Generator().manual_seed(4))
    q = NF4Tensor.quantize(w)
    index = torch.stack([q.codes >> 4, q.codes & 0xF], dim=1).reshape(-1).long()
    want = (torch.tensor(PUBLISHED)[index].view(-1, 64) * q.dequantize().view(-1, 64).abs().amax(1, keepdim=True))
    torch.testing.assert_close(q.dequantize(torch.float64).view(-1, 64), want.double(), rtol=1e-6, atol=1e-6)
    assert q.dequantize(torch.bfloat16).dtype == torch.bfloat16       # a bf16 table, not fp32 promoted
    on_meta = NF4Tensor(*(t.to("meta") for t in q.tensors().values()), q.shape)
    assert on_meta.dequantize().device.type == "meta"
