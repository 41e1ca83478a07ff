"""The Transformer's smaller promises, each against a plain reference: the logit soft-cap formula,
which blocks gradient checkpointing recomputes, the KV cache it makes, its parameter counts and its
context limit. Fast on purpose: mutation testing (bench/mutation.py) runs this file once per mutant."""

from __future__ import annotations

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer


def test_logit_softcap_is_cap_times_tanh_of_logits_over_cap(llama_config):
    capped = Transformer(llama_config(logit_softcap=2.0)).eval()
    raw = Transformer(llama_config()).eval()
    raw.load_state_dict(capped.state_dict())
    idx = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        for p in capped.lm_head.parameters():
            p.mul_(40.0)                       # logits well past the cap, so the cap matters
        raw.load_state_dict(capped.state_dict())
        want = 2.0 * torch.tanh(raw(idx) / 2.0)
        got = capped(idx)
    assert raw(idx).abs().max() > 4.0 and got.abs().max() <= 2.0
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("every, recomputed", [(True, {0, 1, 2, 3}), (2, {0, 2}), (3, {0, 3})])
def test_gradient_checkpointing_recomputes_every_kth_block_in_training_only(llama_config, every, recomputed):
    model = Transformer(llama_config(n_layer=4)).train()
    calls = [0] * 4
    for i, block in enumerate(model.blocks):
        block.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    idx = torch.randint(0, 61, (2, 8))
    model(idx).sum().backward()
    assert calls == [1] * 4                    # a new model recomputes nothing
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    calls[:] = [0] * 4
    model.gradient_checkpointing = every
    model(idx).sum().backward()
    assert {i for i, n in enumerate(calls) if n == 2} == recomputed and set(calls) <= {1, 2}
    for a, p in zip(plain, model.parameters()):
        torch.testing.assert_close(p.grad, a, atol=1e-6, rtol=1e-5)
    calls[:] = [0] * 4
    with torch.no_grad():
        model.eval()(idx)
    assert calls == [1] * 4                    # no recomputation outside training


def test_make_kv_cache_sizes_and_types(llama_config):
    model = Transformer(llama_config())
    cache = model.make_kv_cache(batch_size=3)
    assert cache.max_len == 24 and cache.k[0].shape == (3, 2, 24, 8) and len(cache.k) == 2
    assert model.make_kv_cache(max_len=10).max_len == 10
    assert model.make_kv_cache(max_len=100).max_len == 24         # never more than the context
    assert model.make_kv_cache().k[1].dtype == torch.float32
    assert model.make_kv_cache(dtype=torch.bfloat16).v[1].dtype == torch.bfloat16
    assert model.to(torch.bfloat16).make_kv_cache().k[0].dtype == torch.bfloat16   # the weights' dtype
    assert model.make_kv_cache(device="meta").k[0].device.type == "meta"


def test_parameter_counts_by_hand(gpt2_config, llama_config):
    d, V, T = 32, 61, 24
    gpt2 = Transformer(gpt2_config())
    total = sum(p.numel() for p in gpt2.parameters())
    assert gpt2.matmul_params() == total - T * d               # tied: lm_head counted, positions not
    llama = Transformer(llama_config())
    total = sum(p.numel() for p in llama.parameters())
    assert llama.num_params(exclude_embeddings=True) == total - V * d    # RoPE: no position table
    assert llama.matmul_params() == total - V * d
    assert llama.flops_per_token() == llama.flops_per_token(24) != llama.flops_per_token(12)


def test_the_context_limit_is_inclusive(gpt2_config):
    model = Transformer(gpt2_config(block_size=8)).eval()
    assert model(torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8, 61)
    cache = model.make_kv_cache()
    model(torch.zeros(1, 5, dtype=torch.long), kv_cache=cache)
    assert model(torch.zeros(1, 3, dtype=torch.long), kv_cache=cache).shape == (1, 3, 61)
    with pytest.raises(UserError, match="the input has 9 tokens but the model's context is model.block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_reset_parameters_restores_norms_biases_and_scaled_residual_outputs(gpt2_config, llama_config):
    for model in (Transformer(gpt2_config(n_layer=8, n_embd=128)), Transformer(llama_config(n_layer=8, n_embd=128))):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(3.0)
        model.reset_parameters()
        block = model.blocks[3]
        assert torch.equal(block.attn_norm.weight, torch.ones(128)) and torch.equal(model.norm_f.weight, torch.ones(128))
        if block.attn.o.bias is not None:
            assert block.attn.o.bias.abs().max() == 0 and block.attn_norm.bias.abs().max() == 0
        assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.q.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert block.attn.o.weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)        # 1/sqrt(2·8)
        assert block.mlp.down.weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)
        assert abs(block.attn.q.weight.mean().item()) < 0.002 and abs(block.attn.o.weight.mean().item()) < 0.002
        assert abs(block.mlp.down.weight.mean().item()) < 0.002


def test_computed_position_tables_are_not_saved(gpt2_config, llama_config):
    assert "pos_table" in dict(Transformer(gpt2_config(position="sinusoidal")).named_buffers())
    assert not [n for n in Transformer(gpt2_config(position="sinusoidal")).state_dict() if "pos_table" in n]
    assert not [n for n in Transformer(llama_config()).state_dict() if "rope" in n]


def test_checkpointed_blocks_keep_the_padding_mask(llama_config):
    model = Transformer(llama_config(n_layer=2)).train()
    idx = torch.randint(0, 61, (2, 8))
    real = torch.ones(2, 8, dtype=torch.bool)
    real[1, :3] = False                        # left padding in row 1
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = flag
        model(idx, attn_mask=real).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    calls = [0, 0]
    for i, block in enumerate(model.blocks):
        block.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    model.eval()(idx).sum().backward()         # eval with gradients: still no recomputation
    assert calls == [1, 1]


def test_sinusoidal_positions_are_added_to_the_embeddings(gpt2_config):
    model = Transformer(gpt2_config(position="sinusoidal")).eval()
    idx = torch.randint(0, 61, (1, 10))
    _, hidden = model(idx, return_hidden=True)
    pos = torch.arange(10, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, 32, 2, dtype=torch.float64) / 32)
    table = torch.zeros(10, 32, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)     # Vaswani et al. 2017
    torch.testing.assert_close(hidden[0][0].double(), model.tok_emb(idx)[0].double() + table, atol=1e-5, rtol=1e-5)


def test_every_index_is_made_on_the_model_device(gpt2_config):
    # A model on the meta device: an index built on the CPU instead would fail to combine with it.
    with torch.device("meta"):
        model = Transformer(gpt2_config()).eval()
    idx = torch.zeros(2, 5, dtype=torch.long, device="meta")
    assert model(idx, attn_mask=torch.ones(2, 5, dtype=torch.bool, device="meta")).device.type == "meta"
    cache = model.make_kv_cache(batch_size=2)
    cache.set_lengths(torch.tensor([1, 2]))
    assert model(idx[:, :1], kv_cache=cache).device.type == "meta"
    assert model(idx).device.type == "meta"


def test_a_padding_mask_after_a_cache_and_as_integers(gpt2_config):
    model = Transformer(gpt2_config()).eval()
    idx = torch.randint(0, 61, (2, 9))
    real = torch.ones(2, 9, dtype=torch.long)
    real[1, :2] = 0                                           # row 1 left-padded by 2, as 0/1 integers
    positions = (real.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        whole = model(idx, positions=positions, attn_mask=real)
        torch.testing.assert_close(whole, model(idx, positions=positions, attn_mask=real.bool()))
        cache = model.make_kv_cache(batch_size=2)
        first = model(idx[:, :6], kv_cache=cache, positions=positions[:, :6], attn_mask=real[:, :6])
        rest = model(idx[:, 6:], kv_cache=cache, positions=positions[:, 6:], attn_mask=real)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(whole[1, 2:], model(idx[1:, 2:])[0], atol=1e-5, rtol=1e-5)


def test_a_block_returns_attention_weights_only_when_asked(llama_config):
    block = Transformer(llama_config()).blocks[0].eval()
    x = torch.randn(1, 5, 32)
    out, weights = block(x)
    assert weights is None
    out_w, weights = block(x, need_weights=True)
    assert weights.shape == (1, 4, 5, 5)
    torch.testing.assert_close(out_w, out, atol=1e-5, rtol=1e-5)
