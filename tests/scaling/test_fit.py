"""The fitter against the published laws: planted constants must come back out, with the optimum they imply."""

import math

import numpy as np
import pytest

from scratchllm.errors import UserError
from scratchllm.scaling.fit import bootstrap, fit_isoflop, fit_law
from scratchllm.scaling.laws import BESIROGLU, CHINCHILLA, ScalingLaw
from scratchllm.scaling.plan import plan


def _points(law, n_points=100, noise=0.003, seed=0):
    rng = np.random.default_rng(seed)
    n = 10 ** rng.uniform(7, 10.5, n_points)
    d = 10 ** rng.uniform(9, 12.5, n_points)
    loss = np.array([law.loss(a, b) for a, b in zip(n, d)]) * np.exp(rng.normal(0, noise, n_points))
    return n, d, loss


@pytest.mark.parametrize("law", [CHINCHILLA, BESIROGLU], ids=["chinchilla", "besiroglu"])
def test_fitter_recovers_planted_constants_and_their_optimum(law):
    fit = fit_law(*_points(law))
    assert fit.alpha == pytest.approx(law.alpha, abs=0.03)
    assert fit.beta == pytest.approx(law.beta, abs=0.03)
    assert fit.E == pytest.approx(law.E, abs=0.05)
    # A and B trade off against the exponents; what matters is the surface and the optimum it implies.
    for c in (1e20, 1e22, 1e24):
        n_true, d_true = law.optimal(c)
        n_fit, d_fit = fit.optimal(c)
        assert d_fit / n_fit == pytest.approx(d_true / n_true, rel=0.35)
        assert fit.loss(n_true, d_true) == pytest.approx(law.loss(n_true, d_true), rel=0.01)


def test_bootstrap_intervals_cover_the_planted_exponents():
    n, d, loss = _points(CHINCHILLA, n_points=100, noise=0.005, seed=1)
    fit = fit_law(n, d, loss)
    ci = bootstrap(n, d, loss, fit, samples=20, level=0.95)
    assert ci["alpha"][0] <= CHINCHILLA.alpha <= ci["alpha"][1]
    assert ci["beta"][0] <= CHINCHILLA.beta <= ci["beta"][1]
    assert ci["alpha"][1] - ci["alpha"][0] < 0.2                 # informative, not the whole range


def test_optimal_is_the_constrained_minimum():
    law = BESIROGLU
    c = 1e21
    n_opt, d_opt = law.optimal(c)
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-9)
    grid = np.logspace(math.log10(n_opt) - 1, math.log10(n_opt) + 1, 2001)
    brute = grid[np.argmin([law.loss(n, c / (6 * n)) for n in grid])]
    assert brute == pytest.approx(n_opt, rel=0.01)
    assert plan(c, law=law)["tokens_per_param"] == pytest.approx(d_opt / n_opt)


def test_approach2_recovers_planted_exponents_from_parabolas():
    a_true, b_true = 0.5, 0.5
    profiles = {}
    for c in (1e18, 1e19, 1e20, 1e21):
        n_opt = 0.1 * c ** a_true
        sizes = n_opt * np.array([0.1, 0.3, 1.0, 3.0, 10.0])
        # a parabola in log N with its minimum at n_opt; tokens from the budget
        profiles[c] = [(n, c / (6 * n), 3.0 + 0.05 * math.log(n / n_opt) ** 2) for n in sizes]
    iso = fit_isoflop(profiles)
    assert iso.a == pytest.approx(a_true, abs=1e-6)
    assert iso.b == pytest.approx(b_true, abs=1e-6)
    for c, n in zip(iso.budgets, iso.n_opt):
        assert n == pytest.approx(0.1 * c ** a_true, rel=1e-6)


def test_bad_points_are_refused_in_one_sentence():
    with pytest.raises(UserError, match="at least 5 points"):
        fit_law([1e8] * 3, [1e9] * 3, [3.0] * 3)
    with pytest.raises(UserError, match="finite and positive"):
        fit_law([1e8, -1, 1e8, 1e8, 1e8], [1e9] * 5, [3.0] * 5)
    with pytest.raises(UserError, match="at least 3"):
        fit_isoflop({1e18: [(1e8, 1e9, 3.0), (2e8, 5e8, 2.9)], 1e19: [(1e8, 1e9, 3.0)] * 3})
    with pytest.raises(UserError, match="at least 2 compute budgets"):
        fit_isoflop({1e18: [(1e8, 1e9, 3.0)] * 3})
    with pytest.raises(UserError, match="do not curve upward"):
        fit_isoflop({c: [(n, c / 6 / n, 4.0 - 0.1 * math.log(n)) for n in (1e7, 1e8, 1e9)] for c in (1e18, 1e19)})
    assert isinstance(ScalingLaw(1, 1, 1, 0.3, 0.3).loss(1e6, 1e6), float)
