"""The fused SDPA path and the explicit reference path compute the same attention."""

import pytest
import torch

from scratchllm.model.attention import causal_mask, reference_attention, sdpa_attention
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


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize("start", [0, 3])
def test_both_paths_equal_a_loop_over_heads_and_positions(kind, start):
    # The oracle, one query at a time: query head h reads kv head h // (H / Hkv) (GQA groups are
    # contiguous, as in Llama's repeat_kv), sees keys 0..start+i, scores scaled by 1/sqrt(hd).
    q = torch.randn(1, 4, 5, 8, dtype=torch.float64)
    k = torch.randn(1, HEADS[kind], start + 5, 8, dtype=torch.float64)
    v = torch.randn(1, HEADS[kind], start + 5, 8, dtype=torch.float64)
    group = 4 // HEADS[kind]
    expected = torch.zeros_like(q)
    for h in range(4):
        for i in range(5):
            keys, values = k[0, h // group, : start + i + 1], v[0, h // group, : start + i + 1]
            w = torch.softmax(keys @ q[0, h, i] / 8 ** 0.5, dim=0)
            expected[0, h, i] = w @ values
    ref, _ = reference_attention(q, k, v, start)
    assert torch.allclose(ref, expected, atol=1e-6)     # its softmax runs in fp32 by design
    assert torch.allclose(sdpa_attention(q, k, v, start), expected, atol=1e-10)


def test_attention_dropout_acts_on_the_weights_in_training_only(llama_config):
    from scratchllm.model.attention import Attention

    attn = Attention(llama_config(dropout=0.5), layer=0)
    attn.resid_dropout.p = 0.0            # only the attention-weight dropout is left to act
    x = torch.randn(2, 6, 32)
    eval_out, weights = attn.eval()(x)
    assert weights is None                # no weights unless asked for
    for need_weights in (False, True):
        torch.manual_seed(0)
        train_out, _ = attn.train()(x, need_weights=need_weights)
        assert not torch.allclose(train_out, eval_out, atol=1e-4), need_weights
    assert torch.allclose(attn.eval()(x, need_weights=True)[0], eval_out, atol=1e-5)


def test_defaults_are_plain_causal_and_the_device_is_kept():
    q, k, v = (torch.randn(1, 4, 6, 8) for _ in range(3))
    out, weights = reference_attention(q, k, v)                       # start defaults to 0: plain causal
    assert torch.equal(weights.triu(1), torch.zeros_like(weights)) and (weights.diagonal(dim1=-2, dim2=-1) > 0).all()
    torch.testing.assert_close(out, reference_attention(q, k, v, 0)[0])
    torch.testing.assert_close(sdpa_attention(q, k, v), out, atol=1e-5, rtol=1e-5)
    assert causal_mask(3, 5, 2, device="meta").device.type == "meta"
    q, k = torch.randn(1, 4, 3, 8, device="meta"), torch.randn(1, 2, 5, 8, device="meta")
    assert reference_attention(q, k, k, 2)[0].device.type == sdpa_attention(q, k, k, 2).device.type == "meta"


def test_a_bf16_model_reads_an_fp32_cache_without_autocast(llama_config):
    model = Transformer(llama_config()).eval().to(torch.bfloat16)
    idx = torch.randint(0, 61, (1, 10))
    cache = model.make_kv_cache(dtype=torch.float32)      # keys/values kept in fp32, cast on read
    with torch.no_grad():
        pieces = torch.cat([model(idx[:, :6], kv_cache=cache), model(idx[:, 6:], kv_cache=cache)], dim=1)
        full = model(idx)
    assert pieces.dtype == torch.bfloat16 and cache.k[0].dtype == torch.float32
    torch.testing.assert_close(pieces.float(), full.float(), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("style", ["gpt2_config", "llama_config"])
def test_two_tokens_after_a_cache_stay_causal(style, request):
    # Two queries after cached keys: the first must not see the second (a chunk of exactly 2, with
    # as many queries as the Llama config's kv heads).
    model = Transformer(request.getfixturevalue(style)()).eval()
    idx = torch.randint(0, 61, (1, 9))
    cache = model.make_kv_cache()
    with torch.no_grad():
        got = torch.cat([model(idx[:, :7], kv_cache=cache), model(idx[:, 7:], kv_cache=cache)], dim=1)
        torch.testing.assert_close(got, model(idx), atol=1e-5, rtol=1e-5)


def test_qk_norm_normalizes_each_heads_queries_and_keys_with_the_configs_eps(llama_config):
    from scratchllm.model.attention import Attention

    attn = Attention(llama_config(qk_norm=True, norm_eps=0.5, position="none"), layer=0).eval()
    with torch.no_grad():
        attn.q_norm.weight.uniform_(0.5, 2.0)
        attn.k_norm.weight.uniform_(0.5, 2.0)
    x = torch.randn(1, 6, 32)
    _, weights = attn(x, need_weights=True)

    def rms(t, w):                                  # RMSNorm written out, eps = 0.5 from the config
        return t / torch.sqrt(t.pow(2).mean(-1, keepdim=True) + 0.5) * w

    q = rms(attn.q(x).view(1, 6, 4, 8).transpose(1, 2), attn.q_norm.weight)
    k = rms(attn.k(x).view(1, 6, 2, 8).transpose(1, 2), attn.k_norm.weight).repeat_interleave(2, dim=1)
    scores = (q @ k.transpose(-2, -1) / 8 ** 0.5).masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(weights, scores.softmax(-1), atol=1e-5, rtol=1e-5)
