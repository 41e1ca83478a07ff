"""int8 / int4 formats: the round-trip error stays within the format's bound, packing round-trips,
and GPTQ's layer-output error is no worse than round-to-nearest's on the same calibration inputs."""

import doctest

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model

from scratchllm.inference import quantize as quantize_mod
from scratchllm.inference.quantize import gptq_weight
from scratchllm.model import quant
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.model.quant import (QuantizedLinear, dequantize_codes, pack_int4, quantize_weight,
                                    unpack_int4)


def weights(out=48, n_in=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, n_in, generator=g) * 0.02
    w[3, 17] = 0.9            # an outlier: it sets its row's (or group's) scale
    w[5] = 0.0                # an all-zero row
    w[7, :64] = w[7, :64].abs() + 0.01   # a group of positive values only
    return w


def test_int8_per_channel_error_is_at_most_half_a_step():
    w = weights()
    codes, scale, zero = quantize_weight(w, bits=8)
    assert zero is None and codes.dtype == torch.int8 and scale.shape == (48,)
    assert codes.abs().max() == 127                         # absmax uses the whole range
    torch.testing.assert_close(scale[3], w[3].abs().max() / 127)
    err = (dequantize_codes(codes, scale, None) - w).abs()
    assert (err <= scale[:, None] / 2 + 1e-9).all()
    assert dequantize_codes(codes, scale, None)[5].eq(0).all()


@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_groupwise_error_is_at_most_half_a_step(group):
    w = weights()
    codes, scale, zero = quantize_weight(w, bits=4, group_size=group)
    assert codes.shape == w.shape and codes.max() <= 15 and scale.dtype == torch.float16
    assert scale.shape == zero.shape == (48, 256 // group)
    w_hat = dequantize_codes(codes, scale, zero)
    step = scale.float().repeat_interleave(group, dim=1)
    assert ((w_hat - w).abs() <= step / 2 + 1e-7).all()
    # the grid holds 0 exactly (zero point), so the zero row and exact zeros survive
    assert w_hat[5].eq(0).all()
    # asymmetric: a group whose values sit in [-a, b] uses codes on both sides of its zero point
    g0 = codes[0, :group].int() - zero[0, 0].int()
    assert g0.min() < 0 < g0.max()


def test_int4_packing_round_trips_and_halves_the_bytes():
    codes = torch.randint(0, 16, (6, 64), dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (6, 32) and packed.dtype == torch.uint8
    assert unpack_int4(packed).equal(codes)
    assert packed[0, 0] == codes[0, 0] | (codes[0, 1] << 4)   # even column in the low nibble


@pytest.mark.parametrize("bits,group", [(8, None), (4, 32)])
def test_quantized_linear_matches_the_dequantized_matmul_and_survives_safetensors(bits, group, tmp_path):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 24)
    layer = QuantizedLinear.from_linear(linear, bits, group)
    x = torch.randn(3, 5, 64)
    w_hat = dequantize_codes(*quantize_weight(linear.weight, bits, group))
    torch.testing.assert_close(layer(x), F.linear(x, w_hat, linear.bias), rtol=0, atol=1e-6)
    assert (layer.dequantize() - linear.weight).abs().max() < 0.1 * linear.weight.abs().max()
    save_model(layer, str(tmp_path / "q.safetensors"))
    back = QuantizedLinear(64, 24, bits, group)
    load_model(back, str(tmp_path / "q.safetensors"))
    assert back(x).equal(layer(x))
    assert layer.qweight.numel() == 64 * 24 * bits // 8       # 8 or 4 bits a weight on disk


def correlated_inputs(n=2048, n_in=128, seed=1):
    """Inputs whose features are correlated (as activations are), so error feedback has something to use."""
    g = torch.Generator().manual_seed(seed)
    mix = 3 * torch.randn(n_in, n_in, generator=g) / n_in ** 0.5 + torch.eye(n_in)
    return torch.randn(n, n_in, generator=g) @ mix


@pytest.mark.parametrize("bits,group", [(8, None), (4, 32), (4, 128)])
def test_gptq_layer_output_error_is_no_worse_than_rtn(bits, group):
    w = weights(out=32, n_in=128, seed=2)
    x = correlated_inputs()
    H = 2 * x.T @ x / x.shape[0]
    rtn = dequantize_codes(*quantize_weight(w, bits, group))
    gptq_codes, scale, zero = gptq_weight(w, H, bits, group)
    gptq = dequantize_codes(gptq_codes, scale, zero)
    err = lambda w_hat: (x @ (w - w_hat).T).pow(2).sum().item()   # noqa: E731
    assert err(gptq) < 0.8 * err(rtn)          # on correlated inputs GPTQ is clearly better, not just equal
    if zero is not None:
        assert gptq_codes.max() <= 15


def test_gptq_with_an_identity_hessian_is_round_to_nearest():
    # Uncorrelated inputs: H⁻¹ is diagonal, no error reaches other columns, so GPTQ = RTN (a known limit).
    w = weights(out=16, n_in=128, seed=3)
    for bits, group in [(8, None), (4, 64)]:
        assert gptq_weight(w, torch.eye(128), bits, group)[0].equal(quantize_weight(w, bits, group)[0])


@pytest.mark.parametrize("module", [quant, quantize_mod])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_spec_defaults_and_validation():
    assert quant.QuantSpec(4).group_size == 128 and quant.QuantSpec(8).group_size is None
    with pytest.raises(quant.UserError, match="--group-size 16 is not supported"):
        quant.QuantSpec(4, 16)


def _naive_gptq(w, H, bits, group, damp=0.01):
    """GPTQ as the OBS update it is, one column at a time in float64 with the full inverse Hessian
    (no Cholesky, no lazy blocks): quantize column j, spread its error over the later columns by
    H⁻¹[j, j+1:] / H⁻¹[j, j], then remove j from H⁻¹ (Frantar et al. 2022, eq. 2-3)."""
    W, H = w.double().clone(), H.double().clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.diag(H).mean() * torch.eye(len(H), dtype=H.dtype)
    Hinv = torch.linalg.inv(H)
    codes = torch.zeros(w.shape, dtype=torch.long)
    scale, zero = (quant.int8_scale(W), None) if bits == 8 else (None, None)
    for j in range(W.shape[1]):
        if bits == 4 and j % group == 0:
            scale, zero = quant.int4_params(W[:, j:j + group])
        q = quant.quantize_codes(W[:, j], scale, zero)
        codes[:, j] = q.long()
        w_hat = (q.double() - (0 if zero is None else zero.double())) * scale.double()
        err = (W[:, j] - w_hat) / Hinv[j, j]
        W[:, j + 1:] -= err[:, None] * Hinv[j, j + 1:][None, :]
        Hinv = Hinv - Hinv[:, j:j + 1] @ Hinv[j:j + 1, :] / Hinv[j, j]
    return codes


@pytest.mark.parametrize("bits,group", [(8, None), (4, 32)])
def test_gptq_equals_the_column_by_column_obs_update(bits, group):
    w = weights(out=16, n_in=256, seed=4)           # 256 inputs: two lazy-batch blocks of 128
    x = correlated_inputs(n=512, n_in=256, seed=5)
    x[:, 200] = 0.0                                  # a dead input: its weights are dropped
    H = 2 * x.T @ x / x.shape[0]
    codes, scale, zero = gptq_weight(w, H, bits, group)
    naive = _naive_gptq(w, H, bits, group)
    assert (codes.long() == naive).float().mean() > 0.99          # float32 vs float64: a rare tie may flip
    w_hat = dequantize_codes(codes, scale, zero)
    assert w_hat[:, 200].eq(0).all()
    if zero is not None:
        assert scale.shape == zero.shape == (16, 256 // group)


def _smallest_fp16_at_least(x: torch.Tensor) -> torch.Tensor:
    """The reference for the scale's rounding: every finite fp16 value, sorted, searched."""
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.float16).float()
    every = every[torch.isfinite(every)].unique().sort().values
    return every[torch.searchsorted(every, x.float().contiguous())]


@pytest.mark.parametrize("group", [32, 128])
def test_rtn_codes_equal_the_written_formulas(group):
    w = weights(out=16, n_in=256, seed=6)
    w[2, :group] = torch.arange(group) * 2.0 ** -8        # a range whose scale is exact in fp16
    codes, scale, zero = quantize_weight(w, bits=4, group_size=group)
    g = w.reshape(16, -1, group)
    lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
    want_scale = torch.where(hi > lo, _smallest_fp16_at_least((hi - lo) / 15), torch.ones_like(hi))
    assert torch.equal(scale.float(), want_scale)
    want_zero = torch.round(-lo / want_scale).clamp(0, 15)
    assert torch.equal(zero.float(), want_zero) and zero.dtype == torch.uint8
    want = (torch.round(g / want_scale[..., None]) + want_zero[..., None]).clamp(0, 15).reshape(16, 256)
    assert (codes.float() == want).float().mean() > 0.999       # float rounding may flip an exact tie
    codes8, scale8, zero8 = quantize_weight(w, bits=8)
    absmax = w.abs().amax(1)
    torch.testing.assert_close(scale8, torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax)))
    assert torch.equal(codes8.float(), torch.round(w / scale8[:, None]).clamp(-127, 127)) and zero8 is None


def test_quantized_linear_without_bias_and_its_description():
    torch.manual_seed(1)
    linear = torch.nn.Linear(64, 8, bias=False)
    layer = QuantizedLinear.from_linear(linear, 4, 32)
    assert layer.bias is None and layer.scale.shape == layer.zero.shape == (8, 2)
    x = torch.randn(2, 64, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, x @ layer.dequantize(torch.float64).t())
    assert repr(layer) == "QuantizedLinear(in_features=64, out_features=8, bits=4, group_size=32)"
    assert "group_size" not in repr(QuantizedLinear.from_linear(torch.nn.Linear(64, 8), 8))
    assert QuantizedLinear.from_linear(torch.nn.Linear(64, 8), 8).codes().dtype == torch.int8


def test_which_layers_are_quantized_and_the_group_check():
    model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=48, vocab_size=64, block_size=16))
    names = [n for n, _ in quant.quantizable_linears(model)]
    assert names[:6] == ["blocks.0.attn.q", "blocks.0.attn.k", "blocks.0.attn.v", "blocks.0.attn.o",
                         "blocks.0.mlp.up", "blocks.0.mlp.down"] and len(names) == 12
    with pytest.raises(quant.UserError, match="--group-size 32 does not divide the input width 48 of blocks.0.attn.q"):
        quant.quantized_skeleton(model, quant.QuantSpec(4, 32))
    quant.check_group_size(model, quant.QuantSpec(8))                # int8 has no groups
    skeleton = quant.quantized_skeleton(model, quant.QuantSpec(8))
    assert isinstance(skeleton.blocks[1].mlp.down, QuantizedLinear) and skeleton.blocks[1].mlp.down.bias is not None
    assert isinstance(skeleton.lm_head, torch.nn.Linear)
    no_bias = quant.quantized_skeleton(Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=64, vocab_size=64,
                                                               block_size=16, bias=False)), quant.QuantSpec(4, 32))
    up = no_bias.blocks[0].mlp.up
    assert up.bias is None and up.group_size == 32 and up.scale.shape == (256, 2) and up.qweight.shape == (256, 32)
    holder = torch.nn.Sequential(torch.nn.Linear(2, 2))
    quant.replace_module(holder, "0", torch.nn.Identity())
    assert isinstance(holder[0], torch.nn.Identity)
    assert quant.spec_state(quant.QuantSpec(4, 64, "gptq")) == {
        "kind": "quantized", "quantization": {"bits": 4, "group_size": 64, "method": "gptq"}}


@pytest.mark.parametrize("args, message", [((3,), "--bits 3 is not supported"), ((8, 32), "drop --group-size"),
                                           ((4, 128, "awq"), "--method awq is unknown")])
def test_spec_errors(args, message):
    with pytest.raises(quant.UserError, match=message):
        quant.QuantSpec(*args)
    assert quant.QuantSpec(4, 32, "gptq").method == "gptq"


def test_quantize_model_rtn_and_gptq_use_each_layers_own_inputs():
    torch.manual_seed(7)
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=64, block_size=16)
    base = Transformer(cfg).eval()
    calib = [torch.randint(0, 64, (2, 16)), torch.randint(0, 64, (3, 16))]
    seen = {}                                  # the reference Hessian: every input row of each layer
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.setdefault(n, []).append(inp[0].reshape(-1, inp[0].shape[-1])))
             for n, m in quant.quantizable_linears(base)]
    with torch.no_grad():
        for ids in calib:
            base(ids)
    for h in hooks:
        h.remove()
    weights_before = {n: m.weight.detach().clone() for n, m in quant.quantizable_linears(base)}
    rtn = quantize_mod.quantize_model(Transformer(cfg).eval().requires_grad_(False), quant.QuantSpec(8))
    gptq_model = Transformer(cfg).eval()
    gptq_model.load_state_dict(base.state_dict())
    gptq_model = quantize_mod.quantize_model(gptq_model, quant.QuantSpec(4, 32, "gptq"), calib)
    for name, w in weights_before.items():
        x = torch.cat(seen[name]).float()
        H = 2 * x.T @ x / x.shape[0]
        codes, scale, zero = gptq_weight(w, H, 4, 32)
        layer = gptq_model.get_submodule(name)
        # H summed as a running mean vs all at once: equal up to rounding, so a rare code may differ
        assert (layer.codes() == codes).float().mean() > 0.99
        torch.testing.assert_close(layer.scale.float(), scale.float(), rtol=2e-3, atol=1e-4)
        assert isinstance(rtn.get_submodule(name), QuantizedLinear) and rtn.get_submodule(name).bits == 8


def test_an_empty_quantized_layer_has_the_file_format_and_reads_as_it_prints():
    # The skeleton a quantized run loads into must have the stored dtypes (safetensors checks them).
    int4 = QuantizedLinear(8, 4, bits=4, group_size=4)
    assert (int4.qweight.dtype, int4.scale.dtype, int4.zero.dtype) == (torch.uint8, torch.float16, torch.uint8)
    assert int4.bias is not None and not int4.bias.requires_grad             # frozen, like the codes
    assert repr(int4) == "QuantizedLinear(in_features=8, out_features=4, bits=4, group_size=4)"
    assert repr(QuantizedLinear(8, 4, bits=8)) == "QuantizedLinear(in_features=8, out_features=4, bits=8)"
    w = torch.randn(4, 8)
    assert quant.quantize_codes(w, quant.int8_scale(w)[:, None], None).dtype == torch.int8
    scale, zero = quant.int4_params(w.view(4, 2, 4))
    assert quant.quantize_codes(w.view(4, 2, 4), scale[..., None], zero[..., None]).dtype == torch.uint8


def test_a_quantized_layer_with_bias_runs_in_bf16():
    linear = torch.nn.Linear(8, 4)
    q = QuantizedLinear.from_linear(linear, bits=8)
    x = torch.randn(3, 8)
    got = q(x.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), q(x), atol=0.05, rtol=0.05)


def test_gptq_returns_the_stored_dtypes():
    w = torch.randn(8, 64)
    x = torch.randn(256, 64)
    H = 2 * x.T @ x / 256
    codes, scale, zero = gptq_weight(w, H, 8)
    assert codes.dtype == torch.int8 and zero is None
    codes, scale, zero = gptq_weight(w, H, 4, 32)
    assert (codes.dtype, scale.dtype, zero.dtype) == (torch.uint8, torch.float16, torch.uint8)


def test_the_hessian_is_the_mean_over_every_row_seen_in_any_batch():
    torch.manual_seed(4)
    batches = [torch.randn(2, 3, 5), torch.randn(1, 7, 5)]        # 6 rows, then 7 rows
    record = quantize_mod._HessianRecorder(5)
    for x in batches:
        record(None, (x,), None)
    rows = torch.cat([x.reshape(-1, 5) for x in batches])
    torch.testing.assert_close(record.H, 2 * rows.T @ rows / len(rows))


@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_quantizing_a_model_keeps_each_layers_bias_and_group_size(method):
    torch.manual_seed(5)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=64, vocab_size=96, block_size=16, bias=True)).eval()
    biases = {name: m.bias.clone() for name, m in quant.quantizable_linears(model)}
    calib = [torch.randint(0, 96, (2, 16))] if method == "gptq" else None
    quantize_mod.quantize_model(model, quant.QuantSpec(4, 32, method), calib)
    layers = dict(model.named_modules())
    for name, bias in biases.items():
        assert isinstance(layers[name], QuantizedLinear) and layers[name].group_size == 32
        assert torch.equal(layers[name].bias, bias)
