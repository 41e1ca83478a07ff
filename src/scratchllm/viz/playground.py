"""The playground: a page (plain JS, offline) and a small JSON API over one or two loaded runs.

`playground_router(runs)` returns a FastAPI `APIRouter`; whoever serves it picks the prefix
(`scratchllm serve` mounts it under /playground, `scratchllm viz playground` serves it alone).
The page calls the API with relative URLs, so any prefix works. What it shows, for each run
side by side (base vs chat when given two): the live tokenizer, the next-token distribution
under the sampling knobs with a "step" button, one head's attention heat map, the logit lens.
All numbers come from the same functions the `viz` pictures use; this module only routes.

>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.train.checkpoint import Run
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=256, block_size=32)).eval()
>>> router = playground_router({"base": Run(model, tok, None, "runs/base", 0)})
>>> sorted(r.path for r in router.routes)
['/', '/api/attention', '/api/lens', '/api/next', '/api/runs', '/api/tokenize']
"""

from __future__ import annotations

from importlib.resources import files

import torch
from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from scratchllm.errors import UserError
from scratchllm.inference.sampling import make_generator, sample_next
from scratchllm.viz.inference_steps import filtered_probs
from scratchllm.viz.introspect import attention_maps, check_layer_head, prompt_ids, token_labels
from scratchllm.viz.logit_lens import lens_probs, lens_table
from scratchllm.viz.tokens import token_rows

PAGE = files("scratchllm.viz") / "static" / "playground.html"


class TextRequest(BaseModel):
    run: str
    text: str


class NextRequest(TextRequest):
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    k: int = 10


class AttentionRequest(TextRequest):
    layer: int = 0
    head: int = 0


def playground_router(runs: dict) -> APIRouter:
    """Routes over `runs` (name → a loaded `train.checkpoint.Run`, each with a tokenizer)."""
    for name, run in runs.items():
        prompt_ids(run, "x")       # refuse a run without a tokenizer before serving anything
    router = APIRouter()

    def ids_of(req: TextRequest) -> tuple:
        if req.run not in runs:
            raise HTTPException(404, f"no run named {req.run!r}; this playground has {sorted(runs)}")
        run = runs[req.run]
        try:
            return run, prompt_ids(run, req.text)
        except UserError as e:
            raise HTTPException(400, str(e)) from None

    @router.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @router.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{"name": n, "path": str(r.run_dir), "n_layer": r.model.config.n_layer,
                 "n_head": r.model.config.n_head, "block_size": r.model.config.block_size} for n, r in runs.items()]

    @router.post("/api/tokenize")
    def tokenize(req: TextRequest) -> dict:
        run, ids = ids_of(req)
        return {"tokens": token_rows(run.tokenizer, ids)}

    @router.post("/api/next")
    def next_token(req: NextRequest) -> dict:
        run, ids = ids_of(req)
        with torch.no_grad():
            logits = run.model(torch.tensor([ids]))[0, -1:].float()
        try:
            top_k, top_p = req.top_k or None, req.top_p
            sampled = int(sample_next(logits, req.temperature, top_k, top_p, make_generator(req.seed))[0])
        except UserError as e:
            raise HTTPException(400, str(e)) from None
        probs = filtered_probs(logits, req.temperature, top_k, top_p)[0]
        top = probs.topk(min(req.k, probs.shape[0]))
        labels = token_labels(run.tokenizer, top.indices.tolist() + [sampled])
        return {"top": [{"id": int(i), "label": lab, "p": float(p)} for i, p, lab in zip(top.indices, top.values, labels)],
                "sampled": {"id": sampled, "label": labels[-1], "text": run.tokenizer.decode([sampled])}}

    @router.post("/api/attention")
    def attention(req: AttentionRequest) -> dict:
        run, ids = ids_of(req)
        try:
            check_layer_head(run.model, req.layer, req.head)
        except UserError as e:
            raise HTTPException(400, str(e)) from None
        maps = attention_maps(run.model, ids)[req.layer, req.head]
        return {"labels": token_labels(run.tokenizer, ids), "weights": maps.round(decimals=4).tolist()}

    @router.post("/api/lens")
    def lens(req: TextRequest) -> dict:
        run, ids = ids_of(req)
        table = lens_table(lens_probs(run.model, ids))
        flat = sorted({i for layer in table["top_ids"] for pos in layer for i in pos})
        names = dict(zip(flat, token_labels(run.tokenizer, flat)))
        return {"labels": token_labels(run.tokenizer, ids), "final_prob": table["final_prob"],
                "top": [[names[pos[0]] for pos in layer] for layer in table["top_ids"]]}

    return router
