"""RoPE and the other position encodings."""

import math

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.model.position import apply_rope, rope_frequencies, rope_tables, sinusoidal_table

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}


@pytest.mark.parametrize("scaling", [None, {"type": "linear", "factor": 4.0}, LLAMA3])
def test_rope_score_depends_only_on_offset(scaling):
    cos, sin = rope_tables(head_dim=16, max_len=200, theta=10000.0, scaling=scaling)
    q, k = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)

    def score(i, j):  # q at position i, k at position j
        qi = apply_rope(q.view(1, 1, 1, 16), cos[i:i + 1].double(), sin[i:i + 1].double())
        kj = apply_rope(k.view(1, 1, 1, 16), cos[j:j + 1].double(), sin[j:j + 1].double())
        return (qi * kj).sum().item()

    for i, j in [(5, 2), (9, 9), (30, 1)]:
        for shift in (1, 17, 150):
            assert score(i + shift, j + shift) == pytest.approx(score(i, j), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(6, 2), abs=1e-4)   # and it does depend on the offset


def test_rope_preserves_norm_and_position_zero_is_identity():
    cos, sin = rope_tables(head_dim=8, max_len=10)
    x = torch.randn(1, 2, 10, 8)
    y = apply_rope(x, cos, sin)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(y[:, :, 0], x[:, :, 0])


@pytest.mark.parametrize("scaling", [None, {"rope_type": "linear", "factor": 2.0}, LLAMA3])
def test_rope_frequencies_match_transformers(scaling):
    utils = pytest.importorskip("transformers.modeling_rope_utils")
    from transformers import LlamaConfig

    params = {"rope_type": "default", "rope_theta": 500000.0, **(scaling or {})}
    params.pop("type", None)
    cfg = LlamaConfig(hidden_size=256, num_attention_heads=4, rope_parameters=params)
    ours = rope_frequencies(64, 500000.0, scaling)
    if scaling is None:
        theirs = 1.0 / 500000.0 ** (torch.arange(0, 64, 2).double() / 64)
    else:
        theirs, _ = utils.ROPE_INIT_FUNCTIONS[params["rope_type"]](cfg, "cpu")
    assert torch.allclose(ours.double(), theirs.double(), rtol=1e-5)


@pytest.mark.parametrize("max_len, dim", [(50, 16), (300, 64)])
def test_sinusoidal_table_is_the_published_formula(max_len, dim):
    # Vaswani et al. 2017, section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same).
    oracle = torch.tensor([[math.sin(pos / 10000 ** (2 * (j // 2) / dim)) if j % 2 == 0
                            else math.cos(pos / 10000 ** (2 * (j // 2) / dim)) for j in range(dim)]
                           for pos in range(max_len)])
    table = sinusoidal_table(max_len, dim)
    assert table.shape == (max_len, dim) and table.dtype == torch.float32
    # fp32 angles up to 300 rad carry ~2e-5 of rounding; a wrong base or pairing is off by O(1).
    assert torch.allclose(table, oracle, atol=1e-4, rtol=0)


def test_apply_rope_matches_transformers_rotation():
    modeling = pytest.importorskip("transformers.models.llama.modeling_llama")
    cos, sin = rope_tables(head_dim=16, max_len=12, theta=500.0)
    q, k = torch.randn(2, 4, 12, 16), torch.randn(2, 2, 12, 16)
    hf_q, hf_k = modeling.apply_rotary_pos_emb(q, k, cos[None], sin[None])
    assert torch.allclose(apply_rope(q, cos, sin), hf_q, atol=1e-6)
    assert torch.allclose(apply_rope(k, cos, sin), hf_k, atol=1e-6)


def test_rope_defaults_aliases_and_errors():
    default = 1.0 / 10000.0 ** (torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    assert torch.allclose(rope_frequencies(16).double(), default, rtol=1e-6)       # theta defaults to 10000
    assert torch.equal(rope_frequencies(16, scaling={"rope_type": "default"}), rope_frequencies(16))
    linear = rope_frequencies(16, scaling={"type": "linear", "factor": 4.0})       # the older HF key "type"
    assert torch.allclose(linear, rope_frequencies(16) / 4, rtol=1e-6)
    with pytest.raises(UserError, match="model.rope_scaling type 'yarn' is not supported"):
        rope_frequencies(16, scaling={"rope_type": "yarn", "factor": 2.0})
    # the tables: the default theta, and the scaling passed through to the frequencies
    cos, sin = rope_tables(16, 40)
    angles = torch.outer(torch.arange(40.0), rope_frequencies(16, 10000.0))
    assert torch.allclose(cos[:, :8], angles.cos(), atol=1e-6) and torch.allclose(sin[:, 8:], angles.sin(), atol=1e-6)
    cos4, _ = rope_tables(16, 40, scaling={"rope_type": "linear", "factor": 4.0})
    assert torch.allclose(cos4[:, :8], (angles / 4).cos(), atol=1e-6)


def test_llama3_scaling_defaults_are_llama_3_1s():
    # Missing keys default to Llama 3.1's published values: low 1, high 4, original context 8192.
    given = {"rope_type": "llama3", "factor": 8.0}
    full = {**given, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    assert torch.equal(rope_frequencies(128, 500000.0, given), rope_frequencies(128, 500000.0, full))
    assert not torch.equal(rope_frequencies(128, 500000.0, given), rope_frequencies(128, 500000.0))


def test_llama3_scaling_with_other_factors_matches_transformers():
    utils = pytest.importorskip("transformers.modeling_rope_utils")
    from transformers import LlamaConfig

    # low_freq_factor 2 (not 1) makes old_len / low differ from old_len * low
    params = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 16.0, "low_freq_factor": 2.0,
              "high_freq_factor": 8.0, "original_max_position_embeddings": 256}
    cfg = LlamaConfig(hidden_size=512, num_attention_heads=4, rope_parameters=params)
    theirs, _ = utils.ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    ours = rope_frequencies(128, 500000.0, {k: v for k, v in params.items() if k != "rope_theta"})
    assert torch.allclose(ours.double(), theirs.double(), rtol=1e-5)


def test_apply_rope_keeps_bf16():
    cos, sin = rope_tables(head_dim=8, max_len=4)
    assert apply_rope(torch.randn(1, 1, 4, 8, dtype=torch.bfloat16), cos, sin).dtype == torch.bfloat16
