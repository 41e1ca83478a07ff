"""Attention weights as the model returns them: a causal distribution per query, and the very
weights that, times the values, give the fused kernel's output; and equal to transformers' own."""

from __future__ import annotations

import pytest
import torch

from scratchllm.interop.hf import import_hf
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import load_run
from scratchllm.viz.introspect import attention_maps

CONFIGS = {
    "gpt2": ModelConfig(n_layer=2, n_head=4, n_embd=32, vocab_size=64, block_size=16),
    "llama-gqa": ModelConfig(n_layer=2, n_head=4, n_kv_head=2, n_embd=32, vocab_size=64, block_size=16,
                             norm="rmsnorm", position="rope", mlp="swiglu", bias=False, tie_embeddings=False),
}


@pytest.fixture(params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return Transformer(CONFIGS[request.param]).eval()


def test_rows_are_causal_distributions(model):
    maps = attention_maps(model, list(range(1, 12)))
    T = maps.shape[-1]
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-6, rtol=0)
    above = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert maps[..., above].abs().max() == 0
    assert (maps[..., ~above] > 0).all()                  # every visible key gets some weight


@torch.no_grad()
def test_weights_times_values_is_the_sdpa_output(model):
    ids = torch.tensor([list(range(3, 13))])
    _, hidden, weights = model(ids, return_hidden=True, return_attention=True)
    for layer, block in enumerate(model.blocks):
        x = block.attn_norm(hidden[layer])
        fused, none = block.attn(x, model._rope(None, 0, x.shape[1]))                     # the default path: SDPA
        assert none is None
        B, T, _ = x.shape
        attn = block.attn
        v = attn.v(x).view(B, T, attn.n_kv_head, attn.head_dim).transpose(1, 2)
        v = v.repeat_interleave(attn.n_head // attn.n_kv_head, dim=1)
        y = (weights[layer] @ v).transpose(1, 2).reshape(B, T, -1)
        torch.testing.assert_close(attn.o(y), fused, atol=1e-5, rtol=1e-5)


def test_weights_match_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                    bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    torch.manual_seed(1)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.2 * torch.randn_like(p))              # not the near-uniform attention of a fresh init
    hf.save_pretrained(tmp_path / "hf", safe_serialization=True)
    import_hf(tmp_path / "hf", tmp_path / "run", tokenizer=False)
    ours = attention_maps(load_run(tmp_path / "run").model, list(range(2, 14)))
    with torch.no_grad():
        theirs = hf(torch.tensor([list(range(2, 14))]), output_attentions=True).attentions
    torch.testing.assert_close(ours, torch.stack([a[0] for a in theirs]), atol=1e-5, rtol=1e-4)
