"""RowSampler: each row's distribution is the reference filters' (sample_next's); seeds are per row."""

import pytest
import torch
from scipy.stats import chisquare

from scratchllm.errors import UserError
from scratchllm.inference.sampling import RowSampler, SamplingParams, filtered_probs, top_k_filter, top_p_filter


def reference_probs(logits, temperature, top_k, top_p):
    """What sample_next draws from: top-p after top-k after temperature, then softmax."""
    x = logits / temperature
    if top_k:
        x = top_k_filter(x, top_k)
    if top_p < 1:
        x = top_p_filter(x, top_p)
    return x.softmax(-1)


def test_per_row_filtering_equals_the_reference_filters_row_by_row():
    torch.manual_seed(0)
    logits = torch.randn(4, 50) * 3
    settings = [(1.0, 0, 1.0), (0.7, 10, 1.0), (1.3, 0, 0.8), (0.9, 5, 0.5)]
    t, k, p = (torch.tensor(col) for col in zip(*settings))
    got = filtered_probs(logits, t.float(), k.long(), p.float())
    for row, (temp, top_k, top_p) in enumerate(settings):
        torch.testing.assert_close(got[row], reference_probs(logits[row:row + 1], temp, top_k, top_p)[0])


def test_samples_follow_each_rows_distribution_chi_square():
    torch.manual_seed(1)
    logits = torch.randn(2, 6)
    sampler = RowSampler(2)
    sampler.set_row(0, SamplingParams(temperature=0.8, seed=0))
    sampler.set_row(1, SamplingParams(temperature=1.0, top_k=3, seed=1))
    n = 6000
    draws = torch.stack([sampler.sample(logits) for _ in range(n)])          # [n, 2]
    for row in range(2):
        probs = sampler.probs(logits[row:row + 1], [row])[0].double()
        observed = torch.bincount(draws[:, row], minlength=6).double()
        keep = probs > 0
        assert observed[~keep].sum() == 0
        assert chisquare(observed[keep], n * probs[keep] / probs[keep].sum()).pvalue > 1e-3


def test_a_seeded_row_ignores_its_neighbours_and_padding_ids_are_never_drawn():
    logits = torch.randn(3, 40)
    alone, crowded = RowSampler(1, vocab_size=30), RowSampler(3, vocab_size=30)
    alone.set_row(0, SamplingParams(temperature=2.0, seed=5))
    crowded.set_row(0, SamplingParams(temperature=1.0))                       # unseeded neighbour
    crowded.set_row(1, SamplingParams(temperature=2.0, seed=5))
    crowded.set_row(2, SamplingParams(temperature=0))
    a = [int(alone.sample(logits[1:2])[0]) for _ in range(50)]
    b = [int(crowded.sample(logits)[1]) for _ in range(50)]
    assert a == b and max(a) < 30
    with pytest.raises(UserError, match="top_p"):
        crowded.set_row(0, SamplingParams(top_p=1.5))
