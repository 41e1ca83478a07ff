"""The logit lens (nostalgebraist 2020): read every layer's residual stream as if it were the last.

Each residual stream (the embeddings, then the stream after each block) goes through the model's
own final norm and unembedding, giving a next-token distribution per layer and position. At the
last layer this is exactly the model's output; earlier layers show how the prediction forms.
Knows a model and ids; draws nothing.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> probs = lens_probs(model, [1, 2, 3])
>>> probs.shape                                             # [embeddings + 2 blocks, T, vocab]
torch.Size([3, 3, 50])
>>> torch.allclose(probs[-1], model(torch.tensor([[1, 2, 3]]))[0].softmax(-1), atol=1e-6)
True
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from scratchllm.viz.figures import heat, output_format, write_html, write_png


def read_out(model, stream: torch.Tensor) -> torch.Tensor:
    """Logits of residual stream(s) [..., d] through the final norm, the unembedding and the softcap."""
    logits = model.lm_head(model.norm_f(stream))
    cap = model.config.logit_softcap
    return cap * torch.tanh(logits / cap) if cap else logits


@torch.no_grad()
def lens_probs(model, ids: list[int]) -> torch.Tensor:
    """Next-token probabilities [n_layer + 1, T, vocab] of each layer's residual stream."""
    device = next(model.parameters()).device
    _, hidden = model(torch.tensor([ids], device=device), return_hidden=True)
    return read_out(model, torch.stack([h[0] for h in hidden])).float().softmax(-1).cpu()


def lens_table(probs: torch.Tensor, k: int = 1) -> dict:
    """For each layer and position: the top-k ids and probabilities, and the probability of the
    eventual prediction (the last layer's top token) as that layer sees it."""
    final = probs[-1].argmax(-1)                                        # [T]
    top = probs.topk(k, dim=-1)
    return {"top_ids": top.indices.tolist(), "top_probs": top.values.tolist(),
            "final_ids": final.tolist(),
            "final_prob": probs.gather(-1, final.expand(probs.shape[0], -1)[..., None])[..., 0].tolist()}


def _lens_figure(table: dict, labels: list[str], vocab_labels) -> Figure:
    prob = np.array(table["final_prob"])                                # [L+1, T]
    L1, T = prob.shape
    fig = Figure(figsize=(max(6.0, 1.0 * T + 2), 0.55 * L1 + 2))
    ax = fig.subplots()
    ax.imshow(prob, cmap="Blues", vmin=0, vmax=1, aspect="auto", origin="lower")
    for li in range(L1):
        for t in range(T):
            ax.text(t, li, vocab_labels(table["top_ids"][li][t][0]), ha="center", va="center", fontsize=7,
                    family="monospace", color="white" if prob[li, t] > 0.6 else "black")
    ax.set_xticks(range(T), labels, rotation=90, fontsize=7, family="monospace")
    ax.set_yticks(range(L1), ["embed"] + [f"block {i}" for i in range(L1 - 1)], fontsize=8)
    ax.set_xlabel("input position (the text read so far)")
    ax.set_title("logit lens: each layer's top next token; colour = p(the final prediction)")
    fig.tight_layout()
    return fig


def _lens_html(table: dict, labels: list[str], vocab_labels) -> str:
    rows = []
    for li in reversed(range(len(table["final_prob"]))):
        name = "embed" if li == 0 else f"block {li - 1}"
        cells = "".join(
            f"<td style='background:{heat(table['final_prob'][li][t])}' title='p(final)="
            f"{table['final_prob'][li][t]:.3f}'>{html.escape(vocab_labels(table['top_ids'][li][t][0]))}"
            f"<span class='sub'>{table['top_probs'][li][t][0]:.2f}</span></td>" for t in range(len(labels)))
        rows.append(f"<tr><th>{name}</th>{cells}</tr>")
    head = "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
    return ("<p>Each cell: that layer's most likely next token and its probability; the colour is the "
            "probability that layer gives the model's final prediction.</p>"
            f"<table>{''.join(rows)}<tr><th>input</th>{head}</tr></table>")


def draw_logit_lens(probs: torch.Tensor, labels: list[str], vocab_labels, out: str | Path) -> None:
    """Write the lens of `probs` [L+1, T, V] to `out`; `vocab_labels(id)` names a token."""
    table = lens_table(probs)
    if output_format(out) == "html":
        write_html(out, "logit lens", _lens_html(table, labels, vocab_labels))
    else:
        write_png(out, _lens_figure(table, labels, vocab_labels))
