"""Mixing several sources to target token shares, by up- and down-sampling whole documents.

Each source gets a sampling rate (expected copies of each document): 0.25 keeps a quarter of
its documents, 3.0 repeats each three times (three epochs). A rate's whole part is the number
of guaranteed copies; its fractional part is a coin flip per document, seeded by
hash(seed, document id), so the same recipe always picks the same documents no matter how
the work is split between processes.

Rates come from the target shares w_s (normalised to sum to 1) and the source sizes n_s:

    rate_s = w_s * T / n_s

where T is the total budget: `total` when given, else the largest T at which no source is
repeated more than `max_epochs` times, min_s(n_s * max_epochs / w_s). A source with a fixed
`epochs` takes exactly that rate, and the others share what is left of the budget.

>>> rates = plan_rates({"web": 900, "books": 100}, {"web": 0.5, "books": 0.5}, max_epochs=1.0)
>>> rates["web"], rates["books"]
(0.1111111111111111, 1.0)
>>> copies(2.5, "doc-1", seed=0) in (2, 3)
True
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from scratchllm.errors import UserError


@dataclass
class MixConfig:
    """How the mixed corpus is sized: a total token budget, or as large as `max_epochs` allows."""
    total_tokens: int = 0      # 0: the largest mix with no source above max_epochs
    max_epochs: float = 1.0
    shuffle: bool = True       # interleave documents of all sources (seeded) instead of source by source
    seed: int = 0


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, key)."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def copies(rate: float, doc_id: str, seed: int) -> int:
    """How many times a document appears in the mix at sampling `rate`."""
    whole = math.floor(rate)
    return whole + (1 if unit_hash(seed, doc_id) < rate - whole else 0)


def plan_rates(sizes: dict[str, float], weights: dict[str, float], epochs: dict[str, float] | None = None,
               total: float = 0, max_epochs: float = 1.0) -> dict[str, float]:
    """Sampling rate per source so that sampled sizes follow `weights` (see the module docstring)."""
    epochs = {k: v for k, v in (epochs or {}).items() if v and v > 0}
    for name, size in sizes.items():
        if size <= 0:
            raise UserError(f"source '{name}' is empty after cleaning, filtering and dedup; "
                            f"remove it from the recipe or loosen the filters")
    rates = {name: float(epochs[name]) for name in sizes if name in epochs}
    rest = [name for name in sizes if name not in epochs]
    if not rest:
        return rates
    wsum = sum(weights.get(name, 1.0) for name in rest)
    if wsum <= 0:
        raise UserError("mixing weights must be positive; set each source's weight to its target share")
    share = {name: weights.get(name, 1.0) / wsum for name in rest}
    if total:
        budget = total - sum(rates[n] * sizes[n] for n in rates)
        if budget <= 0:
            raise UserError(f"total_tokens={total} is used up by the fixed-epoch sources; raise it")
    else:
        budget = min(sizes[n] * max_epochs / share[n] for n in rest if share[n] > 0)
    for name in rest:
        rates[name] = share[name] * budget / sizes[name]
    return rates
