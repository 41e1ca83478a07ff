"""The `embeddings` picture: token embeddings projected to 2-D by PCA, and each chosen token's
nearest neighbours by cosine similarity.

PCA is written here: centre the rows, take the top right-singular vectors of the centred
matrix (the directions of largest variance), project onto them. With a vocabulary of thousands,
the plot shows the chosen tokens and a sample of the rest.

>>> import torch
>>> w = torch.tensor([[0., 0.], [2., 0.], [4., 0.1], [6., 0.]])
>>> pca(w, 1).abs().round(decimals=2).flatten().tolist()       # the line the points lie on
[3.0, 1.0, 1.0, 3.0]
>>> nearest(w, 1, k=1)                                    # [2, 0] points the way [6, 0] does
[(3, 1.0)]
"""

from __future__ import annotations

import html
from pathlib import Path

import torch
from matplotlib.figure import Figure

from scratchllm.viz.figures import figure_png, output_format, png_data_uri, write_html, write_png


def pca(weights: torch.Tensor, n_components: int = 2) -> torch.Tensor:
    """Rows of `weights` [N, d] in the top `n_components` principal directions [N, n_components]."""
    w = weights.detach().double()
    centred = w - w.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return (centred @ vh[:n_components].T).float()


def nearest(weights: torch.Tensor, token: int, k: int = 5) -> list[tuple[int, float]]:
    """The k other rows most similar to row `token` by cosine, as (id, similarity) best first."""
    w = torch.nn.functional.normalize(weights.detach().float(), dim=-1)
    sims = w @ w[token]
    sims[token] = -2.0                        # not its own neighbour
    top = sims.topk(min(k, len(sims) - 1))
    return [(int(i), round(float(s), 4)) for i, s in zip(top.indices, top.values)]


def shown_ids(vocab_size: int, chosen: list[int], sample: int = 400, seed: int = 0) -> list[int]:
    """The chosen tokens and a fixed random sample of the rest (all of them for a small vocabulary)."""
    rest = [i for i in range(vocab_size) if i not in set(chosen)]
    if len(rest) > sample:
        pick = torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))[:sample]
        rest = [rest[i] for i in sorted(pick.tolist())]
    return list(chosen) + rest


def draw_embeddings(weights: torch.Tensor, chosen: list[int], vocab_labels, out: str | Path, k: int = 5) -> None:
    """PCA scatter of the token embeddings `weights` [V, d], `chosen` ids labelled, with their neighbours."""
    ids = shown_ids(weights.shape[0], chosen)
    xy = pca(weights)[ids]
    neighbours = {t: nearest(weights, t, k) for t in chosen}
    if output_format(out) == "html":
        rows = "".join(f"<tr><th>{html.escape(vocab_labels(t))}</th>"
                       + "".join(f"<td>{html.escape(vocab_labels(n))} <span class='sub'>{s:.2f}</span></td>"
                                 for n, s in near) + "</tr>" for t, near in neighbours.items())
        body = "<h3>nearest neighbours (cosine)</h3><table>" + rows + "</table>"
        fig_uri = _scatter(xy, ids, chosen, vocab_labels)
        write_html(out, "token embeddings", f"<img src='{fig_uri}'>" + body)
    else:
        write_png(out, _figure(xy, ids, chosen, neighbours, vocab_labels))


def _figure(xy, ids, chosen, neighbours, vocab_labels) -> Figure:
    fig = Figure(figsize=(9, 7))
    ax = fig.subplots()
    n = len(chosen)
    ax.scatter(xy[n:, 0], xy[n:, 1], s=8, color="#bbb")
    for row, t in enumerate(ids):
        if row < n or len(ids) <= 120:
            ax.text(float(xy[row, 0]), float(xy[row, 1]), vocab_labels(t), fontsize=9 if row < n else 6,
                    color="#c00" if row < n else "#555", family="monospace")
    ax.scatter(xy[:n, 0], xy[:n, 1], s=30, color="#c00")
    lines = [f"{vocab_labels(t)!r}: " + ", ".join(f"{vocab_labels(i)!r}" for i, _ in near)
             for t, near in neighbours.items()]
    ax.set_title("token embeddings, PCA to 2-D (red: chosen)\nnearest: " + "; ".join(lines)[:160], fontsize=9)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    fig.tight_layout()
    return fig


def _scatter(xy, ids, chosen, vocab_labels) -> str:
    return png_data_uri(figure_png(_figure(xy, ids, chosen, {}, vocab_labels)))
