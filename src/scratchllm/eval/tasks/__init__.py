"""Task names → readers and files, few-shot contexts, limits: `load_task` turns one `--tasks` entry
into a `Task` ready to score.

An entry is a built-in name (its file found in `--data-dir`), `name=PATH` (a built-in task read
from PATH), a `.jsonl` path (a user's task named by its stem: `{query, choices, gold}` lines are
multiple choice, `{prompt, answer}` lines generative exact match) or any other text file (bits per
byte). Few-shot examples are drawn, with a fixed seed, from the task's other items (MMLU: the
subject's dev split, in order, as lm-eval does); a shot is its context plus the gold continuation,
and shots are joined by a blank line.

>>> sorted(BUILTIN)[:4]
['arc_challenge', 'arc_easy', 'gsm8k', 'hellaswag']
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Callable

from scratchllm.data.sources import open_text
from scratchllm.errors import UserError
from scratchllm.eval.tasks import generative as gen
from scratchllm.eval.tasks import multiple_choice as mc
from scratchllm.eval.tasks import text
from scratchllm.eval.tasks.base import GenItem, MCItem, Task, file_hash

FEWSHOT_SEP = "\n\n"
MMLU_DESCRIPTION = "The following are multiple choice questions (with answers) about {}.\n\n"

# name -> (kind, default file name, reader, generation stop strings)
BUILTIN: dict[str, tuple[str, str, Callable, list[str]]] = {
    "wikitext2": ("rolling", "wikitext2_test.txt", text.read_wikitext, []),
    "lambada": ("lambada", "lambada_openai.jsonl", text.read_lambada, []),
    "hellaswag": ("mc", "hellaswag_val_full.txt.bz2", mc.read_hellaswag, []),
    "arc_easy": ("mc", "arc_easy.jsonl", mc.read_arc, []),
    "arc_challenge": ("mc", "arc_challenge.jsonl", mc.read_arc, []),
    "piqa": ("mc", "piqa.jsonl", mc.read_piqa, []),
    "winogrande": ("mc", "winogrande.jsonl", mc.read_winogrande, []),
    "mmlu": ("mc", "mmlu.tar.xz", mc.read_mmlu, []),
    "gsm8k": ("gen", "gsm8k_test.jsonl", gen.read_gsm8k, gen.GSM8K_STOP),
    "humaneval": ("code", "HumanEval.jsonl.gz", gen.read_humaneval, gen.HUMANEVAL_STOP),
}


def _resolve(spec: str, data_dir: str | None) -> tuple[str, Path, str | None]:
    """(task name, file, built-in name or None) of one --tasks entry."""
    name, _, given = spec.partition("=")
    if given or name in BUILTIN:
        if name not in BUILTIN:
            raise UserError(f"unknown task '{name}' in '{spec}'; built-in tasks are {sorted(BUILTIN)}")
        if given:
            path = Path(given)
        elif data_dir is None:
            raise UserError(f"task '{name}' reads {BUILTIN[name][1]}; pass --data-dir DIR holding it "
                            f"(or {name}=PATH)")
        else:
            path = Path(data_dir) / BUILTIN[name][1]
        if not path.exists():
            raise UserError(f"task '{name}': '{path}' does not exist; pass --data-dir with {BUILTIN[name][1]} "
                            f"or {name}=PATH")
        return name, path, name
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"unknown task '{spec}': not a built-in task ({', '.join(sorted(BUILTIN))}) and "
                        "not an existing file; check the spelling or the path")
    return path.name.split(".")[0], path, None


def _user_task(path: Path) -> tuple[str, list]:
    """A user's JSONL: its first line's fields say multiple choice or generative."""
    with open_text(path) as f:
        first = next((line for line in f if line.strip()), "")
    try:
        row = json.loads(first) if first else {}
    except json.JSONDecodeError:
        row = {}
    if isinstance(row, dict) and "prompt" in row and "answer" in row:
        return "gen", gen.read_prompt_answer(path)
    return "mc", mc.read_query_choices(path)


def _shot_text(item) -> str:
    if isinstance(item, MCItem):
        return item.contexts[item.gold] + item.continuations[item.gold]
    return item.prompt + item.answer


def _with_shots(item, shots: list, prefix: str = ""):
    head = prefix + "".join(_shot_text(s) + FEWSHOT_SEP for s in shots)
    if isinstance(item, MCItem):
        return replace(item, contexts=[head + c for c in item.contexts])
    return replace(item, prompt=head + item.prompt)


def _fewshot(items: list, shots: int, seed: int, limit: int | None, name: str) -> list:
    """The first `limit` items, each with `shots` examples drawn from the other items."""
    keep = items[:limit] if limit else items
    if shots == 0:
        return keep
    if shots > len(items) - 1:
        raise UserError(f"--shots {shots} is larger than task '{name}' can give ({len(items) - 1} other items); "
                        "lower --shots")
    out = []
    for i, item in enumerate(keep):
        rng = random.Random(seed * 1_000_003 + i)
        pool = [j for j in rng.sample(range(len(items)), shots + 1) if j != i][:shots]
        out.append(_with_shots(item, [items[j] for j in pool]))
    return out


def _mmlu(path: Path, shots: int, limit: int | None) -> list[MCItem]:
    test = mc.read_mmlu(path, "test")
    dev = mc.read_mmlu(path, "dev") if shots else {}
    out = []
    for subject, items in test.items():
        pool = dev.get(subject, [])
        if shots > len(pool):
            raise UserError(f"--shots {shots} is larger than MMLU's dev split for '{subject}' ({len(pool)} items); "
                            "use --shots 5 or less")
        prefix = MMLU_DESCRIPTION.format(subject.replace("_", " "))
        out += [_with_shots(it, pool[:shots], prefix) for it in (items[:limit] if limit else items)]
    return out


def load_task(spec: str, data_dir: str | None = None, shots: int = 0, limit: int | None = None,
              seed: int = 1234) -> Task:
    name, path, builtin = _resolve(spec, data_dir)
    if builtin is None:
        if path.name.endswith((".jsonl", ".jsonl.gz", ".jsonl.xz")):
            kind, items = _user_task(path)
        else:
            kind, items = "rolling", text.read_text_file(path)
        stop = gen.USER_STOP if kind == "gen" else []
    else:
        kind, _, reader, stop = BUILTIN[builtin]
        if builtin == "mmlu":
            items = _mmlu(path, shots, limit)
        else:
            items = reader(path)
    if not items:
        raise UserError(f"task '{name}': '{path}' has no items; check that it is the right file")
    if kind in ("rolling", "lambada", "code"):   # scored zero-shot, as lm-eval does
        shots_used, items = 0, items[:limit] if limit else items
    elif builtin == "mmlu":
        shots_used = shots
    else:
        shots_used, items = shots, _fewshot(items, shots, seed, limit, name)
    max_new = 512 if kind == "code" else 256
    answer = "gsm8k" if builtin == "gsm8k" else "exact"
    return Task(name, kind, items, file_hash(path), shots_used, stop, max_new, str(path), answer)


__all__ = ["BUILTIN", "GenItem", "MCItem", "Task", "load_task"]
