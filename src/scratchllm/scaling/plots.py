"""Pictures of a scaling fit: IsoFLOP curves, the loss-vs-compute frontier, the fitted law's contours.

Each function takes plain numbers and writes one PNG (matplotlib, no display needed).

>>> import tempfile, pathlib
>>> from scratchllm.scaling.laws import CHINCHILLA
>>> out = pathlib.Path(tempfile.mkdtemp()) / "c.png"
>>> contours(CHINCHILLA, [1e8, 1e9], [1e10, 1e11], out); out.stat().st_size > 1000
True
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scratchllm.scaling.laws import ScalingLaw  # noqa: E402
from scratchllm.utils.atomic import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


def isoflop_curves(profiles: dict[float, list[tuple[float, float, float]]], path: Path,
                   optima: dict[float, float] | None = None) -> None:
    """Loss against parameters, one curve per budget; the fitted optimum of each marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for budget, points in sorted(profiles.items()):
        points = sorted(points)
        line, = ax.plot([p[0] for p in points], [p[2] for p in points], "o-", label=f"{budget:.0e} FLOPs")
        if optima and budget in optima:
            ax.axvline(optima[budget], color=line.get_color(), ls=":", lw=1)
    ax.set(xscale="log", xlabel="parameters N", ylabel="final val loss (nats/token)", title="IsoFLOP profiles")
    ax.legend(fontsize=8)
    _save(fig, path)


def frontier(points: list[tuple[float, float, float]], law: ScalingLaw, path: Path) -> None:
    """Every run's loss against its compute 6ND, with the law's compute-optimal frontier."""
    fig, ax = plt.subplots(figsize=(6, 4))
    compute = np.array([6 * n * d for n, d, _ in points])
    ax.scatter(compute, [l for *_, l in points], s=14, label="runs")
    grid = np.logspace(np.log10(compute.min()) - 0.5, np.log10(compute.max()) + 1, 50)
    ax.plot(grid, [law.loss(*law.optimal(c)) for c in grid], "k-", label="fit: compute-optimal")
    ax.set(xscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel="val loss (nats/token)", title="Loss vs compute")
    ax.legend(fontsize=8)
    _save(fig, path)


def contours(law: ScalingLaw, params: list[float], tokens: list[float], path: Path) -> None:
    """The fitted L(N, D) as contours, with the runs and the compute-optimal line."""
    n = np.logspace(np.log10(min(params)) - 0.5, np.log10(max(params)) + 0.5, 80)
    d = np.logspace(np.log10(min(tokens)) - 0.5, np.log10(max(tokens)) + 0.5, 80)
    nn, dd = np.meshgrid(n, d)
    fig, ax = plt.subplots(figsize=(6, 4))
    cs = ax.contour(nn, dd, law.loss(nn, dd), levels=12, cmap="viridis")
    ax.clabel(cs, fontsize=7)
    ax.scatter(params, tokens, s=12, c="k", label="runs")
    opt = np.array([law.optimal(6 * a * b) for a, b in zip(nn.ravel(), dd.ravel())])
    order = np.argsort(opt[:, 0])
    ax.plot(opt[order, 0], opt[order, 1], "r--", lw=1, label="compute-optimal")
    ax.set(xscale="log", yscale="log", xlim=(n[0], n[-1]), ylim=(d[0], d[-1]),
           xlabel="parameters N", ylabel="tokens D", title="Fitted L(N, D)")
    ax.legend(fontsize=8)
    _save(fig, path)
