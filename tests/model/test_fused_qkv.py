"""The fused q/k/v projection: one matmul where it pays, equal to three separate ones (fp32: 1e-6
relative on outputs and gradients), and out of the way of everything that needs q, k and v as
modules (LoRA, quantized layers, GPTQ's calibration hooks) and of decoding (few tokens)."""

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from scratchllm.model.attention import Attention
from scratchllm.model.lora import LoraConfig, apply_lora
from scratchllm.model.transformer import Transformer


class _CountLinear(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.linear:
            self.shapes.append(tuple(args[1].shape))
        return func(*args, **(kwargs or {}))


def _projections(attn, x):
    with _CountLinear() as count:
        out = attn.qkv(x)
    return out, count.shapes


@pytest.mark.parametrize("extra", [dict(), dict(qkv_bias=True), dict(n_kv_head=4)])
def test_fused_equals_three_matmuls_in_values_and_gradients(llama_config, extra):
    attn = Attention(llama_config(**extra), layer=0)
    x = torch.randn(4, 40, 32, requires_grad=True)       # 160 tokens > 3·d = 96: the fused path
    inputs = [x] + [p for m in (attn.q, attn.k, attn.v) for p in m.parameters()]
    fused, shapes = _projections(attn, x)
    assert shapes == [(sum(m.out_features for m in (attn.q, attn.k, attn.v)), 32)]   # one matmul
    grads_f = torch.autograd.grad(sum((t * t.detach().sin()).sum() for t in fused), inputs)
    attn.fuse_qkv = False
    separate, shapes = _projections(attn, x)
    assert len(shapes) == 3
    grads_s = torch.autograd.grad(sum((t * t.detach().sin()).sum() for t in separate), inputs)
    for a, b in zip(fused, separate):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads_f, grads_s):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)


def test_decode_sized_batches_keep_three_matmuls(llama_config):
    attn = Attention(llama_config(), layer=0)
    assert len(_projections(attn, torch.randn(8, 1, 32))[1]) == 3   # 8 tokens: the cat would cost more


def test_lora_and_hooks_turn_the_fusion_off(llama_config):
    model = Transformer(llama_config()).eval()
    x = torch.randn(4, 40, 32)
    seen = []
    handle = model.blocks[0].attn.k.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert len(_projections(model.blocks[0].attn, x)[1]) == 3 and seen == [(4, 40, 16)]   # GPTQ's hooks still fire
    handle.remove()
    assert len(_projections(model.blocks[0].attn, x)[1]) == 1
    apply_lora(model, LoraConfig(r=2, targets=["q", "v"]))
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "lora_B"):
                m.lora_B.normal_()
        out, shapes = _projections(model.blocks[0].attn, x)
    attn = model.blocks[0].attn
    assert len(shapes) == 3                               # each base layer on its own, its adapter added
    assert torch.allclose(out[0], attn.q(x)) and not torch.allclose(out[0], attn.q.base(x), atol=1e-4)


def test_whole_model_fused_and_separate_agree_and_keep_the_checkpoint_names(gpt2_config):
    model = Transformer(gpt2_config(block_size=64))
    names = set(model.state_dict())
    idx = torch.randint(0, 61, (4, 64))
    fused = model(idx)
    for block in model.blocks:
        block.attn.fuse_qkv = False
    assert torch.allclose(fused, model(idx), rtol=1e-5, atol=1e-5)
    assert {"blocks.0.attn.q.weight", "blocks.0.attn.k.weight", "blocks.0.attn.v.weight"} <= names
    assert not any("qkv" in n for n in names)
