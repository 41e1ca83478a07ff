"""The fused SDPA path and the explicit reference path compute the same attention."""

import pytest
import torch

from scratchllm.model.attention import reference_attention, sdpa_attention
from scratchllm.model.transformer import Transformer

HEADS = {"mha": 4, "gqa": 2, "mqa": 1}


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize("start", [0, 5])
def test_sdpa_matches_reference_function(kind, start):
    # start > 0 is a KV-cache continuation: T new queries after `start` cached keys.
    q = torch.randn(2, 4, 7, 16)
    k = torch.randn(2, HEADS[kind], start + 7, 16)
    v = torch.randn(2, HEADS[kind], start + 7, 16)
    ref, weights = reference_attention(q, k, v, start)
    assert torch.allclose(sdpa_attention(q, k, v, start), ref, atol=1e-5)
    assert weights.shape == (2, 4, 7, start + 7)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 7))
    # Query i sits at absolute position start+i and must give zero weight to later keys.
    future = torch.arange(start + 7)[None, :] > (start + torch.arange(7))[:, None]
    assert (weights[..., future] == 0).all()


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize("position", ["rope", "learned"])
def test_model_paths_agree(kind, position, llama_config):
    model = Transformer(llama_config(n_kv_head=HEADS[kind], position=position)).eval()
    idx = torch.randint(0, 61, (2, 20))
    logits, weights = model(idx, return_attention=True)
    assert torch.allclose(model(idx), logits, atol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 20, 20)


@pytest.mark.parametrize("extra", [dict(qk_norm=True), dict(qkv_bias=True), dict(logit_softcap=15.0),
                                   dict(mlp="relu2"), dict(position="sinusoidal"), dict(position="none")])
def test_model_paths_agree_with_options(extra, llama_config):
    model = Transformer(llama_config(**extra)).eval()
    idx = torch.randint(0, 61, (1, 16))
    assert torch.allclose(model(idx), model(idx, return_attention=True)[0], atol=1e-5)


@pytest.mark.parametrize("style", ["gpt2_config", "llama_config"])
def test_causal_future_tokens_never_change_past_logits(style, request):
    model = Transformer(request.getfixturevalue(style)()).eval()
    idx = torch.randint(0, 61, (1, 20))
    changed = idx.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 61
    for attention in (False, True):
        a = model(idx, return_attention=attention)
        b = model(changed, return_attention=attention)
        a, b = (a[0], b[0]) if attention else (a, b)
        assert torch.equal(a[:, :12], b[:, :12])
        assert not torch.allclose(a[:, 12:], b[:, 12:])
