"""The Chinchilla loss law L(N, D) = E + A/N^α + B/D^β and the compute-optimal split it implies.

N is the number of parameters, D the number of training tokens, and training costs C ≈ 6·N·D
FLOPs. Minimising L under that constraint (a Lagrange multiplier, or substituting D = C/6N and
setting dL/dN = 0) gives closed forms (Hoffmann et al. 2022, eq. 4):

    N_opt(C) = G · (C/6)^(β/(α+β)),   D_opt(C) = G⁻¹ · (C/6)^(α/(α+β)),   G = (αA / βB)^(1/(α+β))

so when α ≈ β parameters and tokens grow alike, as √C, and the tokens-per-parameter ratio
stays near constant: ~20 for Besiroglu et al.'s refit. (The constants Hoffmann et al. printed
for approach 3 imply ~90 at Gopher's budget, one of the inconsistencies the replication found.)

>>> round(CHINCHILLA.loss(70e9, 1.4e12), 3)          # Chinchilla itself, by the approach-3 fit
1.937
>>> n, d = BESIROGLU.optimal(5.76e23)                 # Gopher's and Chinchilla's budget
>>> f"{n:.2e} params, {d / n:.0f} tokens/param"
'7.22e+10 params, 18 tokens/param'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScalingLaw:
    E: float        # irreducible loss (nats/token): the entropy of text itself
    A: float
    B: float
    alpha: float    # how fast loss falls with parameters
    beta: float     # how fast loss falls with tokens

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.A / params ** self.alpha + self.B / tokens ** self.beta

    def optimal(self, flops: float, flops_per_param_token: float = 6.0) -> tuple[float, float]:
        """(N_opt, D_opt) minimising loss at compute `flops` = flops_per_param_token · N · D."""
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1 / (a + b))
        budget = flops / flops_per_param_token
        return g * budget ** (b / (a + b)), budget ** (a / (a + b)) / g

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# Hoffmann et al. 2022, approach 3 (their eq. 10 constants).
CHINCHILLA = ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
# Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt"), refit on the paper's own data.
BESIROGLU = ScalingLaw(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)

PUBLISHED = {"chinchilla": CHINCHILLA, "besiroglu": BESIROGLU}


def training_seconds(tokens: float, tokens_per_s: float) -> float:
    """Wall time to train on `tokens` at a measured throughput."""
    if tokens_per_s <= 0:
        raise ValueError("tokens_per_s must be positive")
    return tokens / tokens_per_s


def format_duration(seconds: float) -> str:
    """'3 d 4 h', '2 h 5 min', '40 s': a duration a person reads at a glance."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{math.floor(hours)} h {minutes % 60:.0f} min"
    return f"{math.floor(hours / 24)} d {hours % 24:.0f} h"
