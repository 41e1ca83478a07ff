"""Fitting scaling laws to (params, tokens, loss) points, the two ways Hoffmann et al. 2022 did.

**Approach 3** fits L(N, D) = E + A/N^α + B/D^β directly. In log space the model is
log L = LSE(a − α log N, b − β log D, e) with A = eᵃ, B = eᵇ, E = eᵉ, and the objective is the
Huber loss (δ = 10⁻³) of the residuals against log L: robust to a few bad runs, and scale-free.
The surface has many local minima, so L-BFGS starts from a grid (α, β ∈ {0, .5, …, 2},
e ∈ {−1, −.5, …, 1}, a, b ∈ {0, 5, …, 25}: the paper's grid). We evaluate the objective on the
whole grid and run L-BFGS from the best `starts` of it (the paper ran every start; the best few
reach the same optimum far faster). Intervals come from the bootstrap: refit on points drawn
with replacement.

**Approach 2** needs IsoFLOP profiles: runs of several sizes at each compute budget C. A
parabola in log N through each profile's losses has its minimum at N_opt(C); power laws
N_opt ∝ Cᵃ and D_opt ∝ Cᵇ through those minima give the exponents without assuming a form for L.

>>> import numpy as np
>>> from scratchllm.scaling.laws import CHINCHILLA
>>> rng = np.random.default_rng(0)
>>> N = 10 ** rng.uniform(7, 10, 120); D = 10 ** rng.uniform(9, 12, 120)
>>> L = np.array([CHINCHILLA.loss(n, d) for n, d in zip(N, D)])
>>> law = fit_law(N, D, L, starts=8)
>>> round(law.alpha, 2), round(law.beta, 2), round(law.E, 2)
(0.34, 0.28, 1.69)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from scratchllm.errors import UserError
from scratchllm.scaling.laws import ScalingLaw

HUBER_DELTA = 1e-3
# The initialisation grid of Hoffmann et al. (appendix D.2): (a, b, e, alpha, beta).
GRID = np.array(list(itertools.product(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                                       np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5))), dtype=float)


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals and its derivative."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return loss, grad


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray):
    """Summed Huber loss of log-space residuals, and its gradient in (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])  # [3, n]
    pred = logsumexp(terms, axis=0)
    loss, dr = _huber(pred - log_l, HUBER_DELTA)
    w = np.exp(terms - pred) * dr                      # d pred / d term, times d loss / d pred
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * log_n).sum(), -(w[1] * log_d).sum()])
    # subtle: divided by δ (same minimiser). With δ = 1e-3 the raw objective and its gradient are so
    # small that L-BFGS's gradient tolerance stops it at once, wherever it started.
    return loss.sum() / HUBER_DELTA, grad / HUBER_DELTA


def _grid_losses(log_n, log_d, log_l) -> np.ndarray:
    """The objective at every grid point at once (vectorised: [grid, points])."""
    a, b, e, alpha, beta = (GRID[:, i:i + 1] for i in range(5))
    pred = logsumexp(np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(GRID), len(log_n)))]),
                     axis=0)
    return _huber(pred - log_l, HUBER_DELTA)[0].sum(axis=1)


def _check_points(params, tokens, losses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d, l = (np.asarray(x, dtype=float) for x in (params, tokens, losses))
    if not (len(n) == len(d) == len(l)):
        raise UserError("params, tokens and losses must have the same length")
    if len(n) < 5:
        raise UserError(f"a fit of L(N, D) needs at least 5 points (it has 5 constants), got {len(n)}; run more sizes or budgets")
    if (n <= 0).any() or (d <= 0).any() or (l <= 0).any() or not np.isfinite(n * d * l).all():
        raise UserError("params, tokens and losses must be finite and positive")
    return np.log(n), np.log(d), np.log(l)


# a, b, e are free; the exponents stay positive (a negative one would mean loss grows with scale,
# and the compute-optimal split would not exist).
BOUNDS = [(None, None), (None, None), (None, None), (1e-3, 5.0), (1e-3, 5.0)]


def _refine(theta0, log_n, log_d, log_l) -> tuple[np.ndarray, float]:
    theta0 = np.clip(theta0, [-np.inf] * 3 + [1e-3] * 2, [np.inf] * 3 + [5.0] * 2)
    res = minimize(_objective, theta0, args=(log_n, log_d, log_l), jac=True, method="L-BFGS-B", bounds=BOUNDS)
    return res.x, float(res.fun)


def fit_law(params, tokens, losses, starts: int = 32) -> ScalingLaw:
    """Approach 3: E, A, B, alpha, beta by Huber loss on log residuals, L-BFGS from the best grid starts."""
    log_n, log_d, log_l = _check_points(params, tokens, losses)
    order = np.argsort(_grid_losses(log_n, log_d, log_l))[:starts]
    best = min((_refine(GRID[i], log_n, log_d, log_l) for i in order), key=lambda r: r[1])[0]
    return _law(best)


def _law(theta: np.ndarray) -> ScalingLaw:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


def _theta(law: ScalingLaw) -> np.ndarray:
    # subtle: a degenerate fit can underflow A, B or E to 0.0; start from the smallest positive float.
    return np.array([math.log(max(x, 1e-300)) for x in (law.A, law.B, law.E)] + [law.alpha, law.beta])


def bootstrap(params, tokens, losses, law: ScalingLaw, samples: int = 200, level: float = 0.9,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each constant: refit (from `law`) on points resampled with replacement."""
    log_n, log_d, log_l = _check_points(params, tokens, losses)
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(samples):
        pick = rng.integers(0, len(log_n), len(log_n))
        fits.append(_law(_refine(_theta(law), log_n[pick], log_d[pick], log_l[pick])[0]).as_dict())
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return {k: (float(np.percentile([f[k] for f in fits], lo)), float(np.percentile([f[k] for f in fits], hi)))
            for k in fits[0]}


@dataclass
class IsoFlopFit:
    """Approach 2: each budget's optimum, and the power laws through them."""

    budgets: list[float]
    n_opt: list[float]          # parameters at each profile's parabola minimum
    d_opt: list[float]          # tokens there (C / flops-per-token of that size)
    a: float                    # N_opt ∝ C^a
    b: float                    # D_opt ∝ C^b
    n_coef: float               # N_opt = n_coef · C^a
    d_coef: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def fit_isoflop(profiles: dict[float, list[tuple[float, float, float]]]) -> IsoFlopFit:
    """Approach 2 from {budget C: [(params, tokens, loss), ...]} with at least 3 sizes per budget.

    The parabola is fitted in log N; the optimum's tokens are interpolated the same way (log D is
    linear in log N along a profile when flops per token is ~6N), so no FLOP formula is assumed here.
    """
    if len(profiles) < 2:
        raise UserError(f"approach 2 needs at least 2 compute budgets to fit a power law, got {len(profiles)}")
    budgets, n_opt, d_opt = [], [], []
    for budget, points in sorted(profiles.items()):
        if len(points) < 3:
            raise UserError(f"the profile at {budget:.3g} FLOPs has {len(points)} sizes; a parabola needs at least 3")
        log_n = np.log([p[0] for p in points])
        log_d = np.log([p[1] for p in points])
        loss = np.array([p[2] for p in points])
        c2, c1, _ = np.polyfit(log_n, loss, 2)
        x = -c1 / (2 * c2) if c2 > 0 else math.inf
        if not log_n.min() <= x <= log_n.max():
            # An optimum outside the sizes trained is an extrapolation the profile cannot support.
            raise UserError(f"the losses at {budget:.3g} FLOPs do not curve upward on both sides of a minimum "
                            "within the sizes trained; add smaller and larger sizes to that budget")
        slope, icpt = np.polyfit(log_n, log_d, 1)
        budgets.append(budget)
        n_opt.append(float(math.exp(x)))
        d_opt.append(float(math.exp(slope * x + icpt)))
    a, log_na = np.polyfit(np.log(budgets), np.log(n_opt), 1)
    b, log_da = np.polyfit(np.log(budgets), np.log(d_opt), 1)
    return IsoFlopFit(budgets, n_opt, d_opt, float(a), float(b), float(math.exp(log_na)), float(math.exp(log_da)))
