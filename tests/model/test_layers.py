"""Norms and MLPs against their formulas, with random gains and a large eps so that a dropped
weight, a wrong eps or a swapped activation changes the numbers."""

import math

import pytest
import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.layers import MLP, RMSNorm, make_norm


def test_rmsnorm_is_the_formula():
    norm = RMSNorm(8, eps=0.3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
    x = torch.randn(3, 4, 8) * 0.5                # small x: eps matters
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 0.3) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert RMSNorm(8).eps == 1e-5 and torch.equal(RMSNorm(8).weight, torch.ones(8))   # Llama's defaults


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_from_the_config(bias):
    norm = make_norm(ModelConfig(norm="layernorm", norm_eps=0.3, bias=bias), 8)
    assert (norm.bias is not None) == bias
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        if bias:
            norm.bias.uniform_(-1, 1)
    x = torch.randn(3, 8) * 0.5
    centred = x - x.mean(-1, keepdim=True)
    expected = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + 0.3) * norm.weight
    expected = expected + (norm.bias if bias else 0)
    assert torch.allclose(norm(x), expected, atol=1e-6)
    rms = make_norm(ModelConfig(norm="rmsnorm", norm_eps=0.3), 8)
    assert isinstance(rms, RMSNorm) and rms.eps == 0.3


def _gelu_tanh(u):
    return 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))


@pytest.mark.parametrize("kind", ["gelu", "relu2", "swiglu"])
def test_mlp_is_the_formula(kind):
    mlp = MLP(ModelConfig(n_embd=8, mlp=kind, mlp_hidden=12, bias=True)).eval()
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_(0, 0.7)
    x = torch.randn(2, 3, 8)
    up = x @ mlp.up.weight.T + mlp.up.bias
    if kind == "gelu":        # GPT-2's tanh approximation
        h = _gelu_tanh(up)
    elif kind == "relu2":     # modded-nanogpt's ReLU squared
        h = up.clamp(min=0) ** 2
    else:                     # Llama: silu(gate) * up
        gate = x @ mlp.gate.weight.T + mlp.gate.bias
        h = gate * torch.sigmoid(gate) * up
    expected = h @ mlp.down.weight.T + mlp.down.bias
    assert torch.allclose(mlp(x), expected, atol=1e-5)
    assert (mlp.up.weight.shape, mlp.down.weight.shape) == ((12, 8), (8, 12))


def test_mlp_without_bias_and_with_dropout():
    mlp = MLP(ModelConfig(n_embd=8, mlp="swiglu", mlp_hidden=12, bias=False, dropout=0.5))
    assert all(layer.bias is None for layer in (mlp.gate, mlp.up, mlp.down))
    x = torch.randn(4, 8)
    out = mlp.train()(x)
    assert (out == 0).float().mean() > 0.2            # dropout zeroes about half of the outputs ...
    assert torch.allclose(out[out != 0], 2 * mlp.eval()(x)[out != 0], atol=1e-6)   # ... and rescales the rest
