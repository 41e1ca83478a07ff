"""What a task is once read: its items in one of four shapes, plus what the report needs to know.

- `MCItem`: one question, several (context, continuation) options, the gold index. Ordinary
  multiple choice shares one context; Winogrande's partial scoring shares one continuation.
- `TextItem`: a document for rolling perplexity, with its word and byte counts.
- `GenItem`: a prompt and the reference answer (exact match, GSM8K) or the tests (HumanEval).
- `PairItem`: LAMBADA's (context, last word): accuracy is "greedy decoding gives the word".

Readers (the sibling modules) build these from files; the runners in `eval/` score them. This
module reads nothing itself.

>>> item = MCItem(contexts=["2+2="] * 2, continuations=[" 4", " 5"], gold=0, choices=["4", "5"])
>>> Task("toy", "mc", [item], source_hash="0" * 64).chance
0.5
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from scratchllm.data.sources import open_text
from scratchllm.errors import UserError


@dataclass
class MCItem:
    contexts: list[str]
    continuations: list[str]
    gold: int
    choices: list[str]            # the option texts whose length acc_norm / acc_bytes divide by
    subject: str = ""             # MMLU's subject (macro average)
    partial: bool = False         # Winogrande: options differ in context, acc only


@dataclass
class TextItem:
    text: str
    words: int
    bytes: int


@dataclass
class GenItem:
    prompt: str
    answer: str                   # reference answer (exact match) or HumanEval's test code
    entry_point: str = ""         # HumanEval only


@dataclass
class PairItem:
    context: str
    continuation: str


@dataclass
class Task:
    """A benchmark ready to score: `kind` picks the runner ("mc", "rolling", "lambada", "gen", "code")."""

    name: str
    kind: str
    items: list[Any]
    source_hash: str
    shots: int = 0
    stop: list[str] = field(default_factory=list)
    max_new_tokens: int = 256
    source: str = ""
    answer: str = "exact"         # how a generation is scored: "exact" match or "gsm8k" number extraction

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing uniformly (multiple choice only)."""
        if self.kind != "mc" or not self.items:
            return None
        return sum(1 / len(it.continuations) for it in self.items) / len(self.items)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a JSONL task file; a bad line is one sentence naming its number."""
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"'{path}' line {lineno} is not valid JSON ({e.msg}); fix or remove that line") from None
            missing = [k for k in required if not isinstance(row, dict) or k not in row]
            if missing:
                raise UserError(f"'{path}' line {lineno} lacks field(s) {missing}; each line needs {list(required)}")
            yield lineno, row
