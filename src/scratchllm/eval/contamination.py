"""Contamination check: which eval items share a 13-word sequence with a training corpus (GPT-3's method).

Brown et al. (2020, appendix C) call an eval example dirty if any of its n-grams (n = 13 words)
also occurs in the training data; an example shorter than n words is dirty if it occurs whole.
Words here are the lower-cased letter/digit runs of `data/textstats.py`, so punctuation, case
and spacing do not hide an overlap.

The eval side is small, so its n-gram hashes are collected first and the corpus is streamed past
them once (memory grows with the eval sets, not the corpus). A corpus is text (anything
`data.sources.read_texts` reads: .txt, .jsonl, compressed) or a token directory, whose shards are
decoded with its own tokenizer.json in pieces of a million tokens (an n-gram that straddles two
pieces is missed: at most one in 80,000 for n = 13).

>>> from scratchllm.eval.tasks.base import PairItem, Task
>>> item = PairItem("one two three four five six seven eight nine ten eleven twelve", " thirteen")
>>> task = Task("toy", "lambada", [item, PairItem("something else", " entirely")], source_hash="")
>>> check([task], ["ONE two three, four five six seven eight nine ten eleven twelve thirteen fourteen"])["toy"]
{'n': 2, 'dirty': 1, 'dirty_fraction': 0.5, 'dirty_items': [0]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import json

import numpy as np

from scratchllm.data.shards import list_shards, read_shard
from scratchllm.data.sources import read_texts
from scratchllm.data.textstats import ngram_hashes, words
from scratchllm.eval.tasks.base import GenItem, MCItem, PairItem, Task, TextItem
from scratchllm.tokenizer import load_tokenizer
from scratchllm.utils.atomic import atomic_directory

NGRAM = 13
_PIECE = 1_000_000


def item_text(item) -> str:
    """The text of one item as a model would have seen it in training: question and gold answer."""
    if isinstance(item, MCItem):
        return item.contexts[item.gold] + item.continuations[item.gold]
    if isinstance(item, TextItem):
        return item.text
    if isinstance(item, GenItem):
        return item.prompt + item.answer
    if isinstance(item, PairItem):
        return item.context + item.continuation
    raise TypeError(f"no text for {type(item).__name__}")


def _item_ngrams(text: str, n: int) -> tuple[int, np.ndarray]:
    """(n used, hashes): an item shorter than n words is one n-gram of all its words."""
    h = words(text).hashes
    k = min(n, len(h))
    return k, ngram_hashes(h, k) if k else np.zeros(0, np.uint64)


def token_dir_texts(token_dir: str | Path) -> Iterator[str]:
    tok = load_tokenizer(Path(token_dir) / "tokenizer.json")
    for split in ("train", "val"):
        for path in list_shards(token_dir, split):
            ids = read_shard(path)
            for start in range(0, len(ids), _PIECE):
                yield tok.decode([int(i) for i in ids[start:start + _PIECE]])


def corpus_texts(paths: list[str]) -> Iterator[str]:
    for p in paths:
        if (Path(p) / "meta.json").is_file():
            yield from token_dir_texts(p)
        else:
            yield from read_texts([p])


def check(tasks: list[Task], corpus: Iterable[str], n: int = NGRAM) -> dict[str, dict]:
    """Per task: items, dirty items, their share and indices."""
    per_item: list[tuple[str, int, int, np.ndarray]] = []   # (task, item index, n used, hashes)
    for task in tasks:
        for i, item in enumerate(task.items):
            k, h = _item_ngrams(item_text(item), n)
            per_item.append((task.name, i, k, h))
    wanted: dict[int, np.ndarray] = {}
    for _, _, k, h in per_item:
        if k:
            wanted[k] = np.concatenate([wanted.get(k, np.zeros(0, np.uint64)), h])
    wanted = {k: np.unique(v) for k, v in wanted.items()}
    seen = {k: np.zeros(len(v), dtype=bool) for k, v in wanted.items()}
    for text in corpus:
        h = words(text).hashes
        for k, want in wanted.items():
            seen[k] |= np.isin(want, ngram_hashes(h, k))
    found = {k: set(want[seen[k]].tolist()) for k, want in wanted.items()}
    out: dict[str, dict] = {t.name: {"n": len(t.items), "dirty": 0, "dirty_items": []} for t in tasks}
    for name, i, k, h in per_item:
        if k and any(int(x) in found[k] for x in h):
            out[name]["dirty"] += 1
            out[name]["dirty_items"].append(i)
    for entry in out.values():
        entry["dirty_fraction"] = entry["dirty"] / entry["n"] if entry["n"] else 0.0
    return {name: {"n": e["n"], "dirty": e["dirty"], "dirty_fraction": e["dirty_fraction"],
                   "dirty_items": e["dirty_items"]} for name, e in out.items()}


def write_contamination(out: str | Path, result: dict[str, dict], corpus: list[str], n: int) -> Path:
    """OUT/contamination.json and OUT/report.md (a table of dirty shares per task)."""
    out = Path(out)
    lines = [f"# {n}-gram contamination against {', '.join(corpus)}", "",
             "| task | items | dirty | dirty share |", "|---|---|---|---|"]
    lines += [f"| {t} | {e['n']} | {e['dirty']} | {e['dirty_fraction']:.4f} |" for t, e in result.items()]
    with atomic_directory(out) as tmp:
        (tmp / "contamination.json").write_text(json.dumps({"ngram": n, "corpus": corpus, "tasks": result},
                                                           indent=2) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
