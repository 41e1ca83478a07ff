"""The `inference` page: one generation step by step, from the prompt's tokens to the sampled token.

tokens → embeddings → each block (how far it moves the residual stream, and what the stream
would predict there: the logit lens) → logits → probabilities after temperature, top-k and
top-p → the sampled token; then the same again for each next token. The filters and the draw
are the inference layer's own (`inference.sampling`), so the page shows exactly what
`scratchllm generate` does with the same settings and seed.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=50, block_size=8)).eval()
>>> steps = trace_generation(model, [1, 2], n_tokens=2, temperature=0)
>>> len(steps), len(steps[0]["blocks"]), steps[0]["sampled"] == steps[0]["top"][0]["id"]   # greedy: the top token
(2, 2, True)
"""

from __future__ import annotations

import html
from pathlib import Path

import torch

from scratchllm.inference.sampling import check_sampling_args, make_generator, sample_next, top_k_filter, top_p_filter
from scratchllm.viz.figures import heat, write_html
from scratchllm.viz.logit_lens import read_out


def filtered_probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """The distribution the sampler draws from: logits / temperature, then top-k, then top-p (greedy: one-hot)."""
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    z = logits / temperature
    if top_k:
        z = top_k_filter(z, top_k)
    if top_p is not None and top_p < 1:
        z = top_p_filter(z, top_p)
    return z.softmax(-1)


@torch.no_grad()
def trace_step(model, ids: list[int], temperature: float, top_k: int | None, top_p: float | None,
               generator, k: int = 10) -> dict:
    """One step: what each stage makes of the sequence `ids` at its last position, and the token drawn."""
    device = next(model.parameters()).device
    logits, hidden = model(torch.tensor([ids], device=device), return_hidden=True)
    last = logits[0, -1].float()
    streams = [h[0, -1].float() for h in hidden]
    lens = read_out(model, torch.stack(streams)).float().argmax(-1).tolist()
    raw = last.softmax(-1)
    probs = filtered_probs(last[None], temperature, top_k, top_p)[0]
    sampled = int(sample_next(last[None], temperature, top_k or None, top_p, generator)[0])
    top = probs.topk(k)
    return {
        "embedding_norm": float(streams[0].norm()),
        "blocks": [{"update_norm": float((b - a).norm()), "stream_norm": float(b.norm()), "lens_top": lens[i + 1]}
                   for i, (a, b) in enumerate(zip(streams, streams[1:]))],
        "top": [{"id": int(i), "raw": float(raw[i]), "p": float(p)} for i, p in zip(top.indices, top.values)],
        "sampled": sampled, "sampled_p": float(probs[sampled]),
        "entropy": float(-(raw * raw.clamp_min(1e-12).log()).sum()),
    }


def trace_generation(model, ids: list[int], n_tokens: int = 5, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None, seed: int | None = 0) -> list[dict]:
    """`n_tokens` traced steps, each appending its sampled token; stops early at the context's end."""
    check_sampling_args(temperature, top_k, top_p)
    generator = make_generator(seed, next(model.parameters()).device)
    ids, steps = list(ids), []
    for _ in range(n_tokens):
        if len(ids) > model.config.block_size:
            break
        step = trace_step(model, ids, temperature, top_k, top_p, generator)
        steps.append(step)
        ids.append(step["sampled"])
    return steps


def _step_html(n: int, step: dict, vocab_labels) -> str:
    lab = lambda i: html.escape(vocab_labels(i))  # noqa: E731
    blocks = "".join(f"<tr><td>block {i}</td><td>{b['update_norm']:.2f}</td><td>{b['stream_norm']:.2f}</td>"
                     f"<td>{lab(b['lens_top'])}</td></tr>" for i, b in enumerate(step["blocks"]))
    top = "".join(f"<tr><td>{lab(t['id'])}</td><td>{t['id']}</td><td>{t['raw']:.3f}</td>"
                  f"<td style='background:{heat(t['p'])}'>{t['p']:.3f}</td></tr>" for t in step["top"])
    return (f"<details {'open' if n == 0 else ''}><summary><b>step {n + 1}</b>: sampled "
            f"<code>{lab(step['sampled'])}</code> (p = {step['sampled_p']:.3f})</summary>"
            f"<p>1. embeddings: |x| = {step['embedding_norm']:.2f}</p>"
            "<p>2. blocks (|update| added to the residual stream, |stream| after it, what the stream predicts there):</p>"
            f"<table><tr><th>block</th><th>|update|</th><th>|stream|</th><th>lens top</th></tr>{blocks}</table>"
            f"<p>3. logits → softmax (entropy {step['entropy']:.2f} nats) → filters → probabilities:</p>"
            f"<table><tr><th>token</th><th>id</th><th>softmax</th><th>after filters</th></tr>{top}</table>"
            f"<p>4. sampled: <code>{lab(step['sampled'])}</code></p></details>")


def draw_inference(prompt_labels: list[str], steps: list[dict], settings: dict, vocab_labels, out: str | Path) -> None:
    """Write the step-by-step page of `steps` (from `trace_generation`) to `out` (.html)."""
    knobs = ", ".join(f"{k}={v}" for k, v in settings.items())
    text = "".join(html.escape(t) for t in prompt_labels)
    made = "".join(f"<b>{html.escape(vocab_labels(s['sampled']))}</b>" for s in steps)
    body = (f"<p>Prompt tokens: <code>{text}</code> → generated: <code>{made}</code></p><p>Settings: {knobs}</p>"
            + "".join(_step_html(n, s, vocab_labels) for n, s in enumerate(steps)))
    write_html(out, "one generation, step by step", body)
