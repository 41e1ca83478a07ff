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
