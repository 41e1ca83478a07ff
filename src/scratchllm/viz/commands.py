"""One function a `scratchllm viz` picture: open the run, check the input, compute, draw to --out.

The command line (viz/cli.py) only parses flags and calls these; they are importable for
notebooks too. Every input problem is a UserError raised before anything is written, and each
picture is written atomically, so a failed command leaves nothing behind.

>>> import tempfile, pathlib
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.train.checkpoint import save_run_weights
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
>>> _ = save_run_weights(d / "run", Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=256, block_size=16)), tok)
>>> viz_attention(d / "run", "hello", d / "a.png", layer=0, head=1); (d / "a.png").stat().st_size > 1000
True
"""

from __future__ import annotations

from pathlib import Path

import torch

from scratchllm.charlm.plots import bigram_heatmap
from scratchllm.charlm.runs import load_small_run
from scratchllm.errors import UserError
from scratchllm.inference.engine import generate
from scratchllm.train.checkpoint import load_run
from scratchllm.viz.attention import draw_attention, draw_attention_animation
from scratchllm.viz.embeddings import draw_embeddings
from scratchllm.viz.figures import output_format
from scratchllm.viz.inference_steps import draw_inference, trace_generation
from scratchllm.viz.introspect import attention_maps, check_layer_head, prompt_ids, token_labels, vocab_labeller
from scratchllm.viz.logit_lens import draw_logit_lens, lens_probs
from scratchllm.viz.saliency import draw_saliency, gradient_x_input, integrated_gradients
from scratchllm.viz.tokens import draw_tokens


def _open(run_dir, prompt: str, step: int | None = None):
    run = load_run(run_dir, step)
    return run, prompt_ids(run, prompt)


def viz_tokens(run_dir, prompt: str, out, step: int | None = None) -> None:
    output_format(out)
    run, ids = _open(run_dir, prompt, step)
    draw_tokens(run.tokenizer, ids, out)


def viz_attention(run_dir, prompt: str, out, layer: int = 0, head: int = 0, animate: bool = False,
                  max_new_tokens: int = 8, seed: int = 0, step: int | None = None) -> None:
    """The layer × head grid; with `animate`, one head while `max_new_tokens` greedy-or-seeded tokens come."""
    output_format(out, ("gif", "html") if animate else ("png", "html"))
    run, ids = _open(run_dir, prompt, step)
    check_layer_head(run.model, layer, head)
    if not animate:
        draw_attention(attention_maps(run.model, ids), token_labels(run.tokenizer, ids), out, layer, head)
        return
    room = run.model.config.block_size - len(ids)
    new = list(generate(run.model, ids, max_new_tokens=max(0, min(max_new_tokens, room)), seed=seed, top_k=50))
    # The whole sequence in one causal forward: row n of its attention is exactly what the model
    # computed when it predicted token n+1, so the frames are those rows, one by one.
    full = ids + new
    draw_attention_animation(attention_maps(run.model, full), token_labels(run.tokenizer, full), len(ids), out,
                             layer, head)


def viz_logit_lens(run_dir, prompt: str, out, step: int | None = None) -> None:
    output_format(out)
    run, ids = _open(run_dir, prompt, step)
    draw_logit_lens(lens_probs(run.model, ids), token_labels(run.tokenizer, ids), vocab_labeller(run.tokenizer), out)


def _target_id(run, ids: list[int], target: str | None) -> int:
    """The id of `target` (one token's text), or the model's own top prediction when None."""
    if target is None:
        with torch.no_grad():
            return int(run.model(torch.tensor([ids]))[0, -1].argmax())
    target_ids = run.tokenizer.encode(target)
    if len(target_ids) != 1:
        raise UserError(f"--target {target!r} is {len(target_ids)} tokens under this tokenizer; "
                        "give the text of exactly one token (e.g. ' the')")
    return target_ids[0]


def viz_saliency(run_dir, prompt: str, out, target: str | None = None, steps: int = 32,
                 step: int | None = None) -> None:
    output_format(out)
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    run, ids = _open(run_dir, prompt, step)
    target_id = _target_id(run, ids, target)
    gxi = gradient_x_input(run.model, ids, target_id)
    ig = integrated_gradients(run.model, ids, target_id, steps)
    draw_saliency(token_labels(run.tokenizer, ids), gxi, ig, vocab_labeller(run.tokenizer)(target_id), out)


def viz_inference(run_dir, prompt: str, out, max_new_tokens: int = 5, temperature: float = 0.8,
                  top_k: int | None = 50, top_p: float | None = 1.0, seed: int = 0, step: int | None = None) -> None:
    output_format(out, ("html",))
    run, ids = _open(run_dir, prompt, step)
    steps = trace_generation(run.model, ids, max_new_tokens, temperature, top_k, top_p, seed)
    settings = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    draw_inference(token_labels(run.tokenizer, ids), steps, settings, vocab_labeller(run.tokenizer), out)


def viz_embeddings(run_dir, words: list[str], out, k: int = 5, step: int | None = None) -> None:
    """PCA of the run's token embeddings; `words` (each one token's text) are labelled with their neighbours."""
    output_format(out)
    run = load_run(run_dir, step)
    if run.tokenizer is None:
        prompt_ids(run, "")   # the one sentence for a run without a tokenizer
    chosen = []
    for w in words:
        t = run.tokenizer.encode(w)
        if len(t) != 1:
            raise UserError(f"--tokens {w!r} is {len(t)} tokens under this tokenizer; give texts of one token each")
        chosen.append(t[0])
    weights = run.model.tok_emb.weight.detach().float().cpu()[: run.tokenizer.vocab_size]
    draw_embeddings(weights, chosen, vocab_labeller(run.tokenizer), out, k)


def viz_bigram(run_dir, out) -> None:
    """The counting bigram table of a `scratchllm charlm train --model bigram` run, as a heat map."""
    output_format(out, ("png",))
    model, tok, run = load_small_run(run_dir)
    if run.charlm.kind != "bigram":
        raise UserError(f"'{run_dir}' is a charlm run of kind '{run.charlm.kind}', not a counting bigram; "
                        "train one with `scratchllm charlm train --model bigram`")
    bigram_heatmap(model.counts, tok.itos, Path(out))
