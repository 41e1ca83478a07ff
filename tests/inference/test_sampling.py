"""Sampling rules: greedy, temperature, top-k, top-p, seeds."""

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.inference.sampling import make_generator, sample_next, top_k_filter, top_p_filter


@pytest.fixture
def logits():
    return torch.randn(8, 50, generator=torch.Generator().manual_seed(1)) * 2


def test_greedy_is_argmax(logits):
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(-1))
    assert sample_next(logits[0], temperature=0).dim() == 0


def test_top_k_never_picks_outside_the_top_k(logits):
    gen = make_generator(0)
    allowed = logits.topk(5, dim=-1).indices
    for _ in range(200):
        ids = sample_next(logits, temperature=2.0, top_k=5, generator=gen)
        assert (allowed == ids[:, None]).any(-1).all()


def test_top_k_keeps_exactly_k_even_with_ties():
    kept = top_k_filter(torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]]), 2)
    # two of the three tied largest, unchanged, the rest -inf (which two is torch.topk's choice)
    finite = torch.isfinite(kept[0]).nonzero().flatten().tolist()
    assert len(finite) == 2 and set(finite) <= {1, 2, 3} and kept[0, finite].tolist() == [2.0, 2.0]


@pytest.mark.parametrize("k", [1, 3, 49, 50, 80])
def test_top_k_keeps_the_k_largest_like_a_sort(logits, k):
    kept = top_k_filter(logits, k)
    for row, out in zip(logits.tolist(), kept.tolist()):
        winners = sorted(range(len(row)), key=lambda i: -row[i])[:k]      # the oracle (no ties in random logits)
        assert out == [row[i] if i in winners else float("-inf") for i in range(len(row))]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p):
    probs = logits.softmax(-1)
    kept = torch.isfinite(top_p_filter(logits, p))
    for row in range(logits.shape[0]):
        mass = probs[row][kept[row]].sum().item()
        smallest_kept = probs[row][kept[row]].min().item()
        assert mass >= p - 1e-6                          # enough mass ...
        assert mass - smallest_kept < p                  # ... and not one token more than needed
        dropped = probs[row][~kept[row]]
        assert dropped.numel() == 0 or dropped.max().item() <= smallest_kept   # the most likely ones


def test_top_p_samples_stay_in_the_nucleus(logits):
    gen = make_generator(0)
    kept = torch.isfinite(top_p_filter(logits, 0.6))
    for _ in range(200):
        ids = sample_next(logits, temperature=1.0, top_p=0.6, generator=gen)
        assert kept[torch.arange(8), ids].all()


def test_samples_follow_the_softmax_distribution():
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    ids = sample_next(logits.expand(20000, 4), temperature=1.0, generator=make_generator(3))
    freq = torch.bincount(ids, minlength=4).float() / 20000
    assert (freq - logits.softmax(-1)).abs().max() < 0.015


def test_seed_determinism(logits):
    a = sample_next(logits, temperature=1.0, generator=make_generator(42))
    b = sample_next(logits, temperature=1.0, generator=make_generator(42))
    draws = {tuple(sample_next(logits, temperature=1.0, generator=make_generator(s)).tolist()) for s in range(5)}
    assert torch.equal(a, b) and len(draws) > 1


def test_low_temperature_approaches_greedy(logits):
    ids = sample_next(logits, temperature=1e-3, generator=make_generator(0))
    assert torch.equal(ids, logits.argmax(-1))


@pytest.mark.parametrize("kw", [dict(temperature=-1.0), dict(top_k=-3), dict(top_p=0.0), dict(top_p=1.5)])
def test_bad_settings_are_user_errors(logits, kw):
    with pytest.raises(UserError):
        sample_next(logits, **{"temperature": 1.0, **kw})
