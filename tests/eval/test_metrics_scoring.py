"""eval/metrics.py and eval/scoring.py against independent references: lm-evaluation-harness's own
aggregations and rolling windows, `statistics`, and one plain forward per request.

Fast on purpose: mutation testing (bench/mutation.py) runs this file once per mutant."""

from __future__ import annotations

import math
import random
import statistics

import pytest
import torch
import torch.nn.functional as F

from scratchllm.eval.metrics import mean_stderr, pass_at_k, perplexities
from scratchllm.eval.scoring import rolling_windows, score
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer

lm_metrics = pytest.importorskip("lm_eval.api.metrics")
lm_utils = pytest.importorskip("lm_eval.utils")


@pytest.mark.parametrize("values", [[1, 0, 1, 1], [0.25, 3.5, -1.0], [2.0, 2.0], [0.1 * i ** 2 for i in range(9)]])
def test_mean_stderr_equals_lm_eval_and_statistics(values):
    mean, stderr = mean_stderr(values)
    assert mean == pytest.approx(statistics.fmean(values), abs=1e-12)
    assert stderr == pytest.approx(lm_metrics.mean_stderr(values), abs=1e-12)
    assert stderr == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)), abs=1e-12)


def test_mean_stderr_of_one_value_has_no_stderr():
    assert mean_stderr([0.75]) == (0.75, None)


@pytest.mark.parametrize("n,c,k", [(5, 2, 2), (10, 3, 1), (10, 3, 7), (10, 3, 8), (4, 0, 2), (4, 4, 4), (20, 1, 5)])
def test_pass_at_k_equals_the_binomial_formula(n, c, k):
    # Chen et al. (2021): 1 - C(n-c, k) / C(n, k); C(a, k) = 0 for a < k.
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_perplexities_equal_lm_eval_aggregations():
    # lm-eval aggregates rolling log-likelihoods as (ll, weight) pairs over a corpus.
    docs = [(-31.5, 7, 40), (-12.25, 3, 19), (-50.0, 11, 66)]
    total_ll, words, bytes_ = (sum(d[i] for d in docs) for i in range(3))
    got = perplexities(total_ll, words, bytes_)
    assert got["word_perplexity"] == pytest.approx(lm_metrics.weighted_perplexity([(d[0], d[1]) for d in docs]))
    assert got["byte_perplexity"] == pytest.approx(lm_metrics.weighted_perplexity([(d[0], d[2]) for d in docs]))
    assert got["bits_per_byte"] == pytest.approx(lm_metrics.bits_per_byte([(d[0], d[2]) for d in docs]))


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 9, 13])
def test_rolling_windows_equal_lm_eval_disjoint_windows(n):
    ids = list(range(100, 100 + n))
    theirs = [lm_utils.make_disjoint_window(w)
              for w in lm_utils.get_rolling_token_windows(ids, prefix_token=7, max_seq_len=4, context_len=1)]
    assert [(list(c), list(t)) for c, t in rolling_windows(ids, prefix=7, max_len=4)] == theirs


def test_rolling_windows_of_nothing_is_nothing():
    assert list(rolling_windows([], prefix=0, max_len=4)) == []


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=23, block_size=8)).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(15.0)   # peaked distributions: the greedy flag is True for some requests, False for others
    return m


def _alone(model, ctx, cont):
    """The reference: one unpadded forward of the last block_size+1 tokens, continuation log-probs summed."""
    whole = (list(ctx) + list(cont))[-(model.config.block_size + 1):]
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([whole[:-1]])).float(), -1)[0]
    n = min(len(cont), len(whole) - 1)
    lp = logp[-n:]
    target = torch.tensor(whole[-n:])
    return lp.gather(-1, target[:, None]).sum().item(), bool((lp.argmax(-1) == target).all())


def test_score_equals_one_forward_per_request(model):
    rng = random.Random(0)
    requests = [([rng.randrange(23) for _ in range(rng.randint(1, 9))], [rng.randrange(23) for _ in range(rng.randint(1, 4))])
                for _ in range(10)]
    # Greedy continuations (is_greedy must be True) and one continuation longer than the window.
    for ctx in ([3], [5, 9, 2]):
        cont, seq = [], list(ctx)
        for _ in range(3):
            with torch.no_grad():
                nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
            cont.append(nxt)
            seq.append(nxt)
        requests.append((ctx, cont))
    requests.append(([1], list(range(12))))
    seen = []
    got = score(model, requests, batch_size=4, on_batch=seen.append)
    assert seen == [4, 4, 4, 1]
    want = [_alone(model, c, t) for c, t in requests]
    assert [g for _, g in got] == [w for _, w in want]
    assert any(g for _, g in got) and not all(g for _, g in got)
    for (ll, _), (ref, _) in zip(got, want):
        assert ll == pytest.approx(ref, abs=1e-4)
