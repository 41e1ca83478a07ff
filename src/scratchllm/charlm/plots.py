"""Figures of the first models: the bigram table as a heatmap, character embeddings in 2-D, the lr sweep.

Figures are drawn through matplotlib's `Figure` (no pyplot: no display, no global backend) and each is written atomically as a PNG.

>>> import tempfile, pathlib, torch
>>> out = pathlib.Path(tempfile.mkdtemp()) / "b.png"
>>> bigram_heatmap(torch.tensor([[0, 2], [1, 1]]), [".", "a"], out)
>>> out.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from matplotlib.figure import Figure

from scratchllm.utils.atomic import atomic_write_bytes


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())


def _label(ch: str) -> str:
    return {"\n": "\\n", " ": "␣", "\t": "\\t"}.get(ch, ch)


def bigram_heatmap(counts: torch.Tensor, itos: list[str], path: str | Path) -> None:
    """The V x V count table: row = current character, column = next; cells show the pair and its count.

    Cell text is drawn only for small vocabularies (27 for names); larger ones get a plain image.
    """
    V = counts.shape[0]
    size = max(6.0, min(14.0, 0.45 * V))
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(counts.log1p().numpy(), cmap="Blues")  # log scale: 'an' (thousands) and 'qz' (0) both visible
    labels = [_label(c) for c in itos]
    if V <= 30:
        for i in range(V):
            for j in range(V):
                ax.text(j, i, labels[i] + labels[j], ha="center", va="bottom", color="gray", fontsize=7)
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="top", color="gray", fontsize=7)
        ax.axis("off")
    else:
        ax.set_xticks(range(V), labels, fontsize=6)
        ax.set_yticks(range(V), labels, fontsize=6)
    ax.set_title("bigram counts: row = this character, column = the next (colour: log count)")
    fig.tight_layout()
    _save(fig, path)


def embedding_scatter(weights: torch.Tensor, itos: list[str], path: str | Path) -> None:
    """Characters placed by their embedding: its two dimensions, or its top two principal components."""
    w = weights.detach().float()
    if w.shape[1] > 2:
        w = w - w.mean(0)
        _, _, v = torch.linalg.svd(w, full_matrices=False)
        w, axes = w @ v[:2].T, ("principal component 1", "principal component 2")
    else:
        axes = ("dimension 1", "dimension 2")
    fig = Figure(figsize=(7, 7))
    ax = fig.subplots()
    ax.scatter(w[:, 0], w[:, 1], s=220, color="#cfe2f3")
    for i, ch in enumerate(itos):
        ax.text(w[i, 0].item(), w[i, 1].item(), _label(ch), ha="center", va="center", fontsize=10)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title("character embeddings (similar roles end up close)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def lr_sweep(lrs: list[float], losses: list[float], path: str | Path) -> None:
    """Loss against learning rate (log x axis) from `mlp.lr_find`."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(lrs, losses, lw=1)
    ax.set_xscale("log")
    # Past the blow-up the loss is off the chart; the interesting part is the valley before it.
    ax.set_ylim(min(losses) - 0.2, losses[0] + 1.0)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("minibatch loss")
    ax.set_title("learning-rate sweep: pick the peak a little below where the loss turns up")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
