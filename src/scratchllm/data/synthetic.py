"""Synthetic documents as a source: filled-in templates, or text sampled from a trained model.

Modern corpora mix in generated text (TinyStories is entirely model-written; phi's "textbooks"
too). Both generators here are deterministic from their seed, and their documents carry the
source's name so the manifest can tag them as synthetic.

Templates: each `{slot}` is filled with a value drawn from `slots[slot]`; document i uses its
own seeded generator, so document i is the same whatever `count` is.

>>> from scratchllm.data.recipe import SourceConfig
>>> cfg = SourceConfig(name="toy", type="templates", count=2, seed=1,
...                    templates=["{who} saw a {what}."], slots={"who": ["Ann", "Bo"], "what": ["cat", "dog"]})
>>> [d.text for d in template_documents(cfg)] == [d.text for d in template_documents(cfg)]
True
>>> next(template_documents(cfg)).id
'toy:synthetic:0'
"""

from __future__ import annotations

import random
import string
from typing import Callable, Iterator

from scratchllm.data.sources import Document
from scratchllm.errors import UserError


def template_documents(cfg) -> Iterator[Document]:
    """`cfg.count` documents, each one template with its slots filled (a SourceConfig)."""
    if not cfg.templates:
        raise UserError(f"synthetic source '{cfg.name}' has no templates; add templates = [\"...{{slot}}...\"]")
    for template in cfg.templates:
        for _, slot, _, _ in string.Formatter().parse(template):
            if slot and slot not in cfg.slots:
                raise UserError(f"template slot '{{{slot}}}' of source '{cfg.name}' has no values; "
                                f"add it to [sources.slots]")
    for i in range(cfg.count):
        rng = random.Random(f"{cfg.seed}:{i}")
        template = rng.choice(cfg.templates)
        values = {k: rng.choice(v) if isinstance(v, list) and v else str(v) for k, v in cfg.slots.items()}
        yield Document(f"{cfg.name}:synthetic:{i}", template.format(**values), cfg.name)


def model_documents(cfg, sample: Callable[[str, int], str] | None) -> Iterator[Document]:
    """`cfg.count` samples of a trained run, cycling through `cfg.prompts`.

    `sample(prompt, seed)` returns a continuation of `prompt`. The data layer sits below the model
    runs and the engine, so the caller (`scratchllm data prepare`) builds it from `cfg.run`.
    """
    if not cfg.run:
        raise UserError(f"synthetic source '{cfg.name}' has type 'model' but no run; set run = \"runs/NAME\"")
    if sample is None:
        raise UserError(f"synthetic source '{cfg.name}' needs a sampler of run '{cfg.run}'; run it through "
                        "`scratchllm data prepare` (or pass prepare(..., samplers={name: fn}))")
    prompts = cfg.prompts or [""]
    for i in range(cfg.count):
        prompt = prompts[i % len(prompts)]
        yield Document(f"{cfg.name}:synthetic:{i}", prompt + sample(prompt, cfg.seed + i), cfg.name)


def synthetic_documents(cfg, sample: Callable[[str, int], str] | None = None) -> Iterator[Document]:
    """Documents of a synthetic source by its `type` ("templates", or "model" through `sample`)."""
    return template_documents(cfg) if cfg.type == "templates" else model_documents(cfg, sample)
