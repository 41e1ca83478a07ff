"""The forward's seams: per-row positions, attention masks, ragged KV caches, hidden states.

Each is checked against the plainest computation it must equal: the same sequences run one at
a time, without padding, without packing, without a cache.
"""

import pytest
import torch

from scratchllm.model.transformer import Transformer

STYLES = ["gpt2_config", "llama_config", "sinusoidal"]


def _model(style, request):
    if style == "sinusoidal":
        cfg = request.getfixturevalue("gpt2_config")(position="sinusoidal")
    else:
        cfg = request.getfixturevalue(style)()
    return Transformer(cfg).eval()


@pytest.mark.parametrize("style", STYLES)
def test_left_padding_with_mask_and_positions_equals_each_row_alone(style, request):
    model = _model(style, request)
    rows = [torch.randint(0, 61, (n,)) for n in (9, 4, 7)]
    width = max(len(r) for r in rows)
    idx = torch.zeros(len(rows), width, dtype=torch.long)
    real = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, r in enumerate(rows):
        idx[b, width - len(r):] = r
        real[b, width - len(r):] = True
    positions = (real.long().cumsum(1) - 1).clamp(min=0)
    logits = model(idx, positions=positions, attn_mask=real)
    assert torch.isfinite(logits).all()          # padding rows softmax over themselves, never NaN
    for b, r in enumerate(rows):
        alone = model(r[None])[0]
        torch.testing.assert_close(logits[b, width - len(r):], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("style", STYLES)
def test_packed_documents_with_block_mask_equal_separate_forwards(style, request):
    model = _model(style, request)
    docs = [torch.randint(0, 61, (n,)) for n in (5, 8, 3)]
    idx = torch.cat(docs)[None]
    doc_id = torch.cat([torch.full((len(d),), i) for i, d in enumerate(docs)])
    positions = torch.cat([torch.arange(len(d)) for d in docs])[None]
    same_doc = (doc_id[:, None] == doc_id[None, :])[None]           # [1, T, T] block diagonal
    packed = model(idx, positions=positions, attn_mask=same_doc)[0]
    separate = torch.cat([model(d[None])[0] for d in docs])
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("style", STYLES)
def test_ragged_cache_decodes_each_row_as_if_alone(style, request):
    """Right-padded prefill, then per-row lengths: every row continues from its own end."""
    model = _model(style, request)
    prompts = [torch.randint(0, 61, (n,)) for n in (3, 8, 5)]
    steps = 6
    follow = torch.randint(0, 61, (len(prompts), steps))          # forced next tokens (teacher forcing)
    width = max(len(p) for p in prompts)
    idx = torch.zeros(len(prompts), width, dtype=torch.long)
    for b, p in enumerate(prompts):
        idx[b, :len(p)] = p
    cache = model.make_kv_cache(batch_size=len(prompts))
    model(idx, kv_cache=cache)                                     # padding after a row is harmless
    cache.set_lengths(torch.tensor([len(p) for p in prompts]))
    got = torch.stack([model(follow[:, t:t + 1], kv_cache=cache)[:, 0] for t in range(steps)], dim=1)
    assert cache.lengths.tolist() == [len(p) + steps for p in prompts]
    for b, p in enumerate(prompts):
        full = model(torch.cat([p, follow[b]])[None])[0, len(p):]
        torch.testing.assert_close(got[b], full, atol=1e-5, rtol=1e-5)


def test_ragged_cache_refuses_overflow(gpt2_config):
    model = Transformer(gpt2_config()).eval()
    cache = model.make_kv_cache(batch_size=2, max_len=6)
    cache.set_lengths(torch.tensor([2, 5]))
    with pytest.raises(Exception, match="do not fit"):
        model(torch.zeros(2, 2, dtype=torch.long), kv_cache=cache)


@pytest.mark.parametrize("style", ["gpt2_config", "llama_config"])
def test_hidden_states_are_the_residual_stream(style, request):
    model = _model(style, request)
    idx = torch.randint(0, 61, (2, 10))
    logits, hidden, attn = model(idx, return_hidden=True, return_attention=True)
    assert len(hidden) == model.config.n_layer + 1 and len(attn) == model.config.n_layer
    torch.testing.assert_close(model.lm_head(model.norm_f(hidden[-1])), logits)
    torch.testing.assert_close(hidden[0], model.tok_emb(idx) + (model.pos_emb.weight[:10]
                                                                 if model.config.position == "learned" else 0))
    torch.testing.assert_close(model.blocks[0](hidden[0], model._rope(None, 0, 10))[0], hidden[1])


def test_masked_reference_path_matches_sdpa_path(llama_config):
    model = Transformer(llama_config()).eval()
    idx = torch.randint(0, 61, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, :3] = False
    fast = model(idx, attn_mask=mask)
    slow, weights = model(idx, attn_mask=mask, return_attention=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    w = weights[0][1]                                             # row 1: keys 0..2 hidden from later queries
    assert torch.all(w[:, 3:, :3] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
