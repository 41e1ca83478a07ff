"""Speculative decoding: greedy = the target alone; sampling follows the target's distribution."""

import pytest
import torch
from scipy.stats import chisquare

from engine_helpers import STYLES, greedy_by_recomputation, tiny
from scratchllm.errors import UserError
from scratchllm.inference.sampling import filtered_probs
from scratchllm.inference.speculative import ngram_lookup, speculative_generate, verify


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("draft", ["model", "ngram"])
def test_greedy_speculative_output_is_the_targets(style, draft):
    target = tiny(style, seed=0)
    drafter = tiny(style, seed=1, n_layer=1) if draft == "model" else "ngram"
    prompt = [3, 4, 5, 6, 3, 4, 5, 6, 3, 4]                  # repeats, so the n-gram draft finds guesses
    stream = speculative_generate(target, prompt, draft=drafter, k=3, max_new_tokens=18, temperature=0)
    assert list(stream) == greedy_by_recomputation(target, prompt, 18)
    assert stream.finish_reason == "length" and stream.stats.proposed > 0


def test_speculative_stops_at_the_context_like_the_engine():
    target = tiny("gpt2")
    prompt = list(range(1, 27))                                # 26 of 32 positions
    stream = speculative_generate(target, prompt, draft=tiny("gpt2", seed=2), k=4, max_new_tokens=50, temperature=0)
    assert list(stream) == greedy_by_recomputation(target, prompt, 7) and stream.finish_reason == "context"


def test_a_draft_equal_to_the_target_is_always_accepted():
    target = tiny("llama")
    stream = speculative_generate(target, [1, 2, 3], draft=target, k=4, max_new_tokens=30, temperature=1.0,
                                  top_k=20, seed=0)
    assert len(list(stream)) == 30
    assert stream.stats.accepted == stream.stats.proposed > 0


def test_the_first_token_follows_the_targets_distribution_chi_square():
    """On a vocabulary of 8, with a draft that disagrees with the target, the kept-or-resampled first
    token of 40,000 rounds is distributed as the target's (filtered) p, not as the draft's q."""
    target = tiny("gpt2", seed=0, vocab_size=8, init_std=0.5)              # large weights: peaked outputs
    draft = tiny("gpt2", seed=5, vocab_size=8, n_layer=1, init_std=0.5)
    prompt = torch.tensor([[1, 2, 3]])
    settings = (torch.tensor([0.9]), torch.tensor([6]), torch.tensor([0.95]))   # temperature, top-k, top-p
    with torch.no_grad():
        q1 = filtered_probs(draft(prompt)[:, -1], *settings)
        p1 = filtered_probs(target(prompt)[:, -1], *settings)
    n = 40_000
    g = torch.Generator().manual_seed(0)
    drafted = torch.multinomial(q1.expand(n, -1), 1, replacement=True, generator=g)     # [n, 1]
    p2 = torch.full((n, 8), 1 / 8)                          # the position after the draft: irrelevant here
    kept, token = verify(torch.stack([p1.expand(n, -1), p2], dim=1), q1.expand(n, -1)[:, None], drafted, g)
    first = torch.where(kept == 1, drafted[:, 0], token)
    observed = torch.bincount(first, minlength=8).double()
    support = p1[0] > 0
    assert observed[~support].sum() == 0                    # never a token the target's filters exclude
    assert (p1 - q1).abs().sum() > 0.3                      # the draft really is a different distribution
    expected = lambda probs: n * (probs + 1e-12) / (probs + 1e-12).sum()
    assert chisquare(observed[support], expected(p1[0][support].double())).pvalue > 1e-3
    assert chisquare(observed[support], expected(q1[0][support].double())).pvalue < 1e-6   # the test has power


def test_ngram_lookup_finds_the_latest_repeat():
    assert ngram_lookup([1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3], k=3) == [7, 1, 2]
    assert ngram_lookup([1, 2, 3], k=3) == []


def test_a_draft_with_another_vocabulary_is_one_sentence():
    with pytest.raises(UserError, match="vocabulary has 50 tokens and the target's 61") as e:
        speculative_generate(tiny("gpt2"), [1, 2], draft=tiny("gpt2", vocab_size=50))
    assert "\n" not in str(e.value)
