"""Each architecture switch changes what it claims and nothing else.

Two models are built from the same seed, one with the switch: their parameters must differ only in
the tensors the switch adds, removes or re-initialises, and the claim itself is checked against
the formula written out here (zero-initialised projections make every block the identity; value
embeddings add λ₁·table[token] to v in their layers only; QK-norm is RMSNorm on each head's q and
k before RoPE; ReLU²; tanh soft-capping; an untied head is a second matrix; RoPE sees only
relative positions)."""

import pytest
import torch
import torch.nn.functional as F

from scratchllm.errors import UserError
from scratchllm.inference.gguf import gguf_style
from scratchllm.interop.hf_config import hf_arch
from scratchllm.model.attention import reference_attention
from scratchllm.model.position import apply_rope
from scratchllm.model.transformer import Transformer


def _twins(base, switched, seed=0):
    torch.manual_seed(seed)
    a = Transformer(base).eval()
    torch.manual_seed(seed)
    b = Transformer(switched).eval()
    return a, b


def _difference(a, b):
    """(keys only in a, keys only in b, shared keys whose tensors differ)."""
    sa, sb = a.state_dict(), b.state_dict()
    changed = {k for k in sa.keys() & sb.keys() if not torch.equal(sa[k], sb[k])}
    return set(sa) - set(sb), set(sb) - set(sa), changed


IDX = torch.randint(0, 61, (2, 12), generator=torch.Generator().manual_seed(5))


def test_zero_init_proj_zeroes_only_the_output_projections_and_blocks_start_as_identity(gpt2_config):
    a, b = _twins(gpt2_config(), gpt2_config(zero_init_proj=True))
    projections = {f"blocks.{i}.{m}.weight" for i in range(2) for m in ("attn.o", "mlp.down")}
    assert _difference(a, b) == (set(), set(), projections)
    assert all(b.state_dict()[k].abs().max() == 0 for k in projections)
    logits, hidden = b(IDX, return_hidden=True)
    assert all(torch.equal(h, hidden[0]) for h in hidden)          # each block adds exactly zero
    assert torch.allclose(logits, b.lm_head(b.norm_f(hidden[0])), atol=1e-6)
    b.train()
    F.cross_entropy(b(IDX).flatten(0, 1), IDX.flatten()).backward()
    assert b.blocks[0].attn.o.weight.grad.abs().sum() > 0          # the projections do learn
    assert hf_arch(b.config) == hf_arch(a.config)                  # an init choice: exports as before


def test_value_embeds_add_a_token_table_to_v_in_their_layers_only(llama_config):
    a, b = _twins(llama_config(n_layer=4), llama_config(n_layer=4, value_embeds=1))
    added = {"value_embeds.0.weight", "blocks.0.attn.ve_mix", "blocks.3.attn.ve_mix"}  # the U: first and last layer
    assert _difference(a, b) == (set(), added, set())
    assert b.value_embeds[0].weight.shape == (61, 2 * 8)            # kv heads × head dim
    with torch.no_grad():
        b.blocks[0].attn.ve_mix.copy_(torch.tensor([1.0, 0.0]))
        b.blocks[3].attn.ve_mix.copy_(torch.tensor([1.0, 0.0]))
        assert torch.allclose(b(IDX), a(IDX), atol=1e-6)           # mixed out: the model without them
        b.blocks[3].attn.ve_mix.copy_(torch.tensor([0.7, 1.3]))
        _, hid_a = a(IDX, return_hidden=True)
        _, hid_b = b(IDX, return_hidden=True)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(hid_a[:4], hid_b[:4]))
    assert not torch.allclose(hid_a[4], hid_b[4], atol=1e-3)        # only layer 3 reads its table
    # layer 3 by hand: v = 0.7·v(x) + 1.3·table[token]
    attn, x = b.blocks[3].attn, b.blocks[3].attn_norm(hid_b[3])
    B, T, _ = x.shape
    heads = lambda t, n: t.view(B, T, n, 8).transpose(1, 2)        # noqa: E731
    rope = b.rope_cos[:T], b.rope_sin[:T]
    q = apply_rope(heads(attn.q(x), 4), *rope)
    k = apply_rope(heads(attn.k(x), 2), *rope)
    v = heads(0.7 * attn.v(x) + 1.3 * b.value_embeds[0](IDX), 2)
    y, _ = reference_attention(q, k, v)
    with torch.no_grad():
        ours = attn(x, rope, ve=b.value_embeds[0](IDX))[0]
        assert torch.allclose(ours, attn.o(y.transpose(1, 2).reshape(B, T, 32)), atol=1e-5)


def test_value_embeds_work_with_the_kv_cache_and_are_refused_by_exporters(llama_config):
    model = Transformer(llama_config(n_layer=2, value_embeds=1)).eval()
    cache = model.make_kv_cache(batch_size=2)
    with torch.no_grad():
        full = model(IDX)
        parts = torch.cat([model(IDX[:, :7], kv_cache=cache), model(IDX[:, 7:], kv_cache=cache)], dim=1)
    assert torch.allclose(full, parts, atol=1e-5)
    with pytest.raises(UserError, match="value_embeds"):
        hf_arch(model.config)
    with pytest.raises(UserError, match="value_embeds"):
        gguf_style(model.config)
    with pytest.raises(UserError, match="value_embeds"):
        llama_config(n_layer=2, value_embeds=2).validate()


def test_untied_head_is_a_second_matrix_and_nothing_else(gpt2_config):
    a, b = _twins(gpt2_config(), gpt2_config(tie_embeddings=False))
    # init draws the embedding, ..., the head last: tied, the one matrix keeps the head's draw
    assert _difference(a, b) == (set(), set(), {"tok_emb.weight"})
    assert torch.equal(a.lm_head.weight, b.lm_head.weight) and a.lm_head.weight is a.tok_emb.weight
    assert b.num_params() - a.num_params() == 61 * 32
    with torch.no_grad():
        b.tok_emb.weight.copy_(b.lm_head.weight)
        assert torch.allclose(a(IDX), b(IDX), atol=1e-6)             # same maths once the matrices agree
    for m in (a, b):
        F.cross_entropy(m(IDX).flatten(0, 1), IDX.flatten()).backward()
    # tied, the embedding's gradient holds the head's too; untied, the two are apart and sum to it
    assert torch.allclose(a.tok_emb.weight.grad, b.tok_emb.weight.grad + b.lm_head.weight.grad, atol=1e-6)


def test_qk_norm_is_rmsnorm_on_each_heads_q_and_k_before_rope(llama_config):
    a, b = _twins(llama_config(), llama_config(qk_norm=True))
    added = {f"blocks.{i}.attn.{n}_norm.weight" for i in range(2) for n in "qk"}
    assert _difference(a, b) == (set(), added, set())
    attn = b.blocks[0].attn
    with torch.no_grad():
        attn.q_norm.weight.uniform_(0.5, 1.5), attn.k_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 12, 32)
    rope = b.rope_cos[:12], b.rope_sin[:12]
    rms = lambda t, g: t / t.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt() * g   # noqa: E731
    heads = lambda t, n: t.view(2, 12, n, 8).transpose(1, 2)                      # noqa: E731
    q = apply_rope(rms(heads(attn.q(x), 4), attn.q_norm.weight), *rope)
    k = apply_rope(rms(heads(attn.k(x), 2), attn.k_norm.weight), *rope)
    y, _ = reference_attention(q, k, heads(attn.v(x), 2))
    with torch.no_grad():
        assert torch.allclose(attn(x, rope)[0], attn.o(y.transpose(1, 2).reshape(2, 12, 32)), atol=1e-5)
        assert not torch.allclose(a(IDX), b(IDX), atol=1e-3)


def test_relu2_changes_only_the_activation(gpt2_config):
    a, b = _twins(gpt2_config(), gpt2_config(mlp="relu2"))
    assert _difference(a, b) == (set(), set(), set())
    mlp, x = b.blocks[0].mlp, torch.randn(2, 5, 32)
    with torch.no_grad():
        assert torch.allclose(mlp(x), mlp.down(torch.relu(mlp.up(x)) ** 2), atol=1e-6)
        assert not torch.allclose(a(IDX), b(IDX), atol=1e-4)


def test_logit_softcap_is_cap_tanh_of_the_logits(gpt2_config):
    a, b = _twins(gpt2_config(init_std=0.5), gpt2_config(init_std=0.5, logit_softcap=3.0))
    assert _difference(a, b) == (set(), set(), set())
    with torch.no_grad():
        raw, capped = a(IDX), b(IDX)
    assert raw.abs().max() > 3.0 and capped.abs().max() < 3.0
    assert torch.allclose(capped, 3.0 * torch.tanh(raw / 3.0), atol=1e-5)


def test_rope_sees_only_relative_positions(llama_config):
    learned, rope = _twins(llama_config(position="learned"), llama_config())
    only_learned, only_rope, _ = _difference(learned, rope)
    assert only_learned == {"pos_emb.weight"} and only_rope == set()   # RoPE's tables are computed, not saved
    pos = torch.arange(12).expand(2, 12)
    with torch.no_grad():
        assert torch.allclose(rope(IDX, positions=pos), rope(IDX, positions=pos + 9), atol=1e-5)
        assert not torch.allclose(learned(IDX, positions=pos), learned(IDX, positions=pos + 9), atol=1e-3)
