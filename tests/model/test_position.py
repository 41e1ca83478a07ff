"""RoPE and the other position encodings."""

import pytest
import torch

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


def test_sinusoidal_table():
    table = sinusoidal_table(50, 16)
    assert torch.allclose(table[0, 0::2], torch.zeros(8)) and torch.allclose(table[0, 1::2], torch.ones(8))
    assert table[7, 0].item() == pytest.approx(torch.sin(torch.tensor(7.0)).item())
