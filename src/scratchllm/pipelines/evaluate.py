"""The speedrun's evaluation: baselines on the held-out split, benchmarks, and samples before/after SFT.

`evaluate_base` is the stage `evaluate`: the unigram/bigram baselines of the held-out split
(pipelines/baselines.py), a few samples of the base run, and, when a benchmark directory is
given, every task of `EvalSettings.tasks` whose file is there, scored by the evaluation harness
(eval/harness.py) into `OUT/eval/` (results.json and report.md, with chance, n-gram and published
figures). A task whose file is missing is listed, not fatal: the capstone runs with what exists.
`sft_samples` puts the base and the fine-tuned run side by side on held-out SFT prompts.

>>> sorted(PROMPTS)
['code', 'prose']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scratchllm.data.chat import load_conversations, split_heldout
from scratchllm.eval.harness import evaluate_task
from scratchllm.eval.lm import LocalLM
from scratchllm.eval.report import write_results
from scratchllm.eval.tasks import BUILTIN, load_task
from scratchllm.inference.chat import ChatSession
from scratchllm.pipelines.baselines import ngram_baselines, text_baselines
from scratchllm.pipelines.report import samples
from scratchllm.train.checkpoint import load_run
from scratchllm.train.finetune import FinetuneConfig
from scratchllm.utils.device import resolve_device

PROMPTS = {"code": ["def ", "class ", "import ", "The "], "prose": ["The ", "It was a ", "She said", "Chapter"]}
SFT_PROMPTS = 3          # held-out SFT prompts shown before/after
MAX_PROMPT_CHARS = 200
REPLY_TOKENS = 60


def evaluate_base(out: Path, token_dir: Path, eval_data: str | None, settings, prose: bool) -> dict:
    """Figures of the base run in `out`: baselines, samples, and (with `eval_data`) benchmark results."""
    run = load_run(out, device=str(resolve_device("auto")))
    figures = {"baselines": ngram_baselines(token_dir),
               "samples": samples(run.model, run.tokenizer, PROMPTS["prose" if prose else "code"])}
    if eval_data:
        figures["tasks"], figures["missing_tasks"] = run_tasks(run, token_dir, eval_data, settings, out / "eval")
    return figures


def run_tasks(run, token_dir: Path, eval_data: str, settings, out: Path) -> tuple[dict, list[str]]:
    """Score each task whose file is in `eval_data`; write `out`; returns (results by task, missing tasks)."""
    names = [n.strip() for n in settings.tasks.split(",") if n.strip()]
    missing = [n for n in names if n in BUILTIN and not (Path(eval_data) / BUILTIN[n][1]).exists()]
    tasks = [load_task(n, eval_data, 0, settings.limit or None) for n in names if n not in missing]
    lm = LocalLM(run, batch_size=settings.batch_size)
    results = {"model": str(run.run_dir), "step": run.step,
               "tasks": {t.name: evaluate_task(lm, t, progress=False) for t in tasks},
               "ngram_baselines": {t.name: text_baselines(token_dir, np.array([i for it in t.items for i in lm.encode(it.text)],
                                                                              dtype=np.int64), sum(it.bytes for it in t.items))
                                   for t in tasks if t.kind == "rolling"}}
    write_results(out, results)
    return {name: {**entry, "ngram": results["ngram_baselines"].get(name)} for name, entry in results["tasks"].items()}, missing


def _chat(run) -> ChatSession:
    return ChatSession(run.model, run.tokenizer, max_new_tokens=REPLY_TOKENS, temperature=0)


def _fits(run, prompt: str) -> bool:
    """Whether the rendered prompt leaves the reply room in the context (tiny models have 64-128 tokens)."""
    return len(_chat(run).prompt_ids(prompt)) + REPLY_TOKENS // 2 <= run.model.config.block_size


def sft_samples(base_dir: Path, sft_dir: Path, sft_file: Path) -> list[tuple[str, str, str]]:
    """(held-out prompt, the base run's reply, the SFT run's reply), greedy, for a few short held-out prompts."""
    ft = FinetuneConfig()   # the SFT stage uses its split defaults: these prompts were held out of training
    _, held = split_heldout(load_conversations(sft_file, placeholders=ft.placeholders), ft.val_fraction, ft.split_seed)
    device = str(resolve_device("auto"))
    base, tuned = load_run(base_dir, device=device), load_run(sft_dir, device=device)
    prompts = [c[0]["content"] for c in held if c[0]["role"] == "user" and len(c[0]["content"]) <= MAX_PROMPT_CHARS]
    prompts = [p for p in prompts if _fits(tuned, p)][:SFT_PROMPTS]   # in file order: the first that fit
    return [(p, "".join(_chat(base).send(p)).strip(), "".join(_chat(tuned).send(p)).strip()) for p in prompts]
