"""Which input tokens a next-token logit depends on: gradient × input and integrated gradients.

Both attribute f = the logit of `target` at the last position to each input token's embedding
e_i (the rows of `tok_emb`; positions are left as they are). Gradient × input is
(∂f/∂e_i)·e_i, one backward pass. Integrated gradients (Sundararajan et al. 2017) average the
gradient along the straight path from a baseline (all-zero embeddings) to the input:
IG_i = (e_i − b_i) · mean_k ∂f/∂e(b + α_k (e − b)), α_k the midpoints of `steps` equal steps.
Completeness: the attributions add up to f(x) − f(baseline), up to the Riemann-sum error.

The embeddings are swapped in through a forward hook on `tok_emb` (PyTorch's public hook API;
the model's code is unchanged), so every step is one batched forward of the model itself.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> _ = torch.manual_seed(0); model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> ig = integrated_gradients(model, [1, 2, 3], target=7, steps=64)
>>> ig.attributions.shape, abs(float(ig.attributions.sum()) - (ig.f_input - ig.f_baseline)) < 1e-3
(torch.Size([3]), True)
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from scratchllm.viz.figures import diverging, output_format, write_html, write_png


@dataclass
class Attribution:
    attributions: torch.Tensor   # [T]: one number a token (the embedding dimensions summed)
    f_input: float               # the target logit for the real input
    f_baseline: float            # ... for the baseline (nan for gradient × input)


def _target_logit(model, ids: list[int], embeddings: torch.Tensor, target: int) -> torch.Tensor:
    """The target logit at the last position, one a row of `embeddings` [N, T, d] (they replace tok_emb's output)."""
    idx = torch.tensor([ids], device=embeddings.device).expand(embeddings.shape[0], -1)
    handle = model.tok_emb.register_forward_hook(lambda module, args, out: embeddings)
    try:
        logits = model(idx)
    finally:
        handle.remove()
    return logits[:, -1, target]


def input_embeddings(model, ids: list[int]) -> torch.Tensor:
    device = next(model.parameters()).device
    return model.tok_emb(torch.tensor(ids, device=device)).detach()


def gradient_x_input(model, ids: list[int], target: int) -> Attribution:
    """(∂f/∂e_i)·e_i for each token i, f the target's logit at the last position."""
    emb = input_embeddings(model, ids)[None].requires_grad_(True)
    f = _target_logit(model, ids, emb, target)
    (grad,) = torch.autograd.grad(f.sum(), emb)
    return Attribution((grad * emb)[0].sum(-1).detach().cpu(), float(f.detach()), float("nan"))


def integrated_gradients(model, ids: list[int], target: int, steps: int = 32, batch: int = 16) -> Attribution:
    """Integrated gradients from the all-zero baseline, a midpoint Riemann sum of `steps` points."""
    emb = input_embeddings(model, ids)
    baseline = torch.zeros_like(emb)
    alphas = (torch.arange(steps, device=emb.device, dtype=emb.dtype) + 0.5) / steps
    total = torch.zeros_like(emb)
    for chunk in alphas.split(batch):            # `batch` path points a forward, to bound memory
        path = (baseline + chunk[:, None, None] * (emb - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(_target_logit(model, ids, path, target).sum(), path)
        total += grad.sum(0)
    with torch.no_grad():
        ends = _target_logit(model, ids, torch.stack([emb, baseline]), target)
    attributions = ((emb - baseline) * total / steps).sum(-1)
    return Attribution(attributions.detach().cpu(), float(ends[0]), float(ends[1]))


def _figure(labels: list[str], gxi: Attribution, ig: Attribution, target_label: str) -> Figure:
    fig = Figure(figsize=(max(6.0, 0.6 * len(labels) + 2), 4.5))
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x - 0.2, gxi.attributions.numpy(), 0.4, label="gradient × input", color="#9bc")
    ax.bar(x + 0.2, ig.attributions.numpy(), 0.4, label="integrated gradients", color="#e96")
    ax.axhline(0, color="#444", lw=0.6)
    ax.set_xticks(x, labels, rotation=90, fontsize=8, family="monospace")
    ax.set_ylabel("attribution to the logit")
    ax.set_title(f"which tokens raise the logit of {target_label!r} next  (IG sum {float(ig.attributions.sum()):.3f}"
                 f" ≈ f(x) − f(0) = {ig.f_input - ig.f_baseline:.3f})")
    ax.legend()
    fig.tight_layout()
    return fig


def _html(labels: list[str], gxi: Attribution, ig: Attribution, target_label: str) -> str:
    parts = []
    for name, a in (("integrated gradients", ig), ("gradient × input", gxi)):
        scale = float(a.attributions.abs().max()) or 1.0
        spans = "".join(f"<span class='tok' style='background:{diverging(float(v) / scale)}' title='{float(v):.4f}'>"
                        f"{html.escape(lab)}</span>" for lab, v in zip(labels, a.attributions))
        parts.append(f"<h3>{name}</h3><div>{spans}</div>")
    return (f"<p>Target: the logit of <b>{html.escape(target_label)}</b> as the next token "
            f"(f(x) = {ig.f_input:.3f}, f(baseline) = {ig.f_baseline:.3f}, IG sum = "
            f"{float(ig.attributions.sum()):.3f}). Green raises it, red lowers it.</p>" + "".join(parts))


def draw_saliency(labels: list[str], gxi: Attribution, ig: Attribution, target_label: str, out: str | Path) -> None:
    """Write both attributions of each input token to `out` (.png bars or .html coloured text)."""
    if output_format(out) == "html":
        write_html(out, "saliency", _html(labels, gxi, ig, target_label))
    else:
        write_png(out, _figure(labels, gxi, ig, target_label))
