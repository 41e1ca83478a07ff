"""Readers for the multiple-choice benchmarks, in the prompt formats lm-evaluation-harness uses.

| task | file (in --data-dir) | context → continuation |
|---|---|---|
| arc_easy, arc_challenge | arc_*.jsonl `{query, choices, gold}` | "Question: …\\nAnswer:" → " choice" |
| piqa | piqa.jsonl (same layout) | "Question: …\\nAnswer:" → " choice" |
| hellaswag | hellaswag_val_full.txt.bz2 (6 lines an item) | "label: context" → " ending" |
| winogrande | winogrande.jsonl `{context_options, continuation, gold}` | "…option" → " rest" (partial) |
| mmlu | mmlu.tar.xz (hendrycks CSVs) | "Q\\nA. …\\nD. …\\nAnswer:" → " A".." D" |
| a user's file | NAME.jsonl `{query, choices, gold}` | query → " choice" |

>>> it = mc_item("Question: 1+1?", ["2", "3"], 1)
>>> it.contexts[0], it.continuations
('Question: 1+1?', [' 2', ' 3'])
"""

from __future__ import annotations

import bz2
import csv
import io
import tarfile
from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.eval.tasks.base import MCItem, read_jsonl_rows

MMLU_LETTERS = ["A", "B", "C", "D"]


def mc_item(context: str, choices: list[str], gold: int, subject: str = "") -> MCItem:
    """Ordinary multiple choice: one context, continuation " " + choice (lm-eval's target delimiter)."""
    return MCItem([context] * len(choices), [" " + c for c in choices], gold, list(choices), subject)


def _check_gold(path: Path, lineno: int, gold, n: int) -> int:
    if not isinstance(gold, int) or not 0 <= gold < n:
        raise UserError(f"'{path}' line {lineno}: gold {gold!r} is not an index into its {n} choices; "
                        f"give a whole number from 0 to {n - 1}")
    return gold


def read_query_choices(path: Path, template: str = "{query}") -> list[MCItem]:
    """`{query, choices, gold}` lines; `template` turns the query into the context."""
    items = []
    for lineno, row in read_jsonl_rows(path, ("query", "choices", "gold")):
        choices = row["choices"]
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise UserError(f"'{path}' line {lineno}: 'choices' must be a list of at least two strings")
        gold = _check_gold(path, lineno, row["gold"], len(choices))
        items.append(mc_item(template.format(query=row["query"]), choices, gold))
    return items


def read_arc(path: Path) -> list[MCItem]:
    # the file's query already reads "Question: ..."; lm-eval appends "\nAnswer:"
    return read_query_choices(path, "{query}\nAnswer:")


read_piqa = read_arc


def read_winogrande(path: Path) -> list[MCItem]:
    """Partial scoring: each option completes the sentence up to the blank; only the rest is scored."""
    items = []
    for lineno, row in read_jsonl_rows(path, ("context_options", "continuation", "gold")):
        options = row["context_options"]
        gold = _check_gold(path, lineno, row["gold"], len(options))
        cont = " " + row["continuation"].strip()
        items.append(MCItem(list(options), [cont] * len(options), gold, list(options), partial=True))
    return items


def read_hellaswag(path: Path) -> list[MCItem]:
    """The text form: per item a context line, the gold index, then four ending lines."""
    opener = bz2.open if path.name.endswith(".bz2") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) % 6:
        raise UserError(f"'{path}' has {len(lines)} lines, not a multiple of 6 (context, label, 4 endings); "
                        "pass the unmodified hellaswag_val_full.txt(.bz2)")
    items = []
    for i in range(0, len(lines), 6):
        try:
            gold = int(lines[i + 1])
        except ValueError:
            raise UserError(f"'{path}' line {i + 2}: label {lines[i + 1]!r} is not a number 0-3") from None
        items.append(mc_item(lines[i].strip(), [e.strip() for e in lines[i + 2:i + 6]], gold))
    return items


def mmlu_question(row: list[str]) -> str:
    q, *options = row[:5]
    return q.strip() + "".join(f"\n{letter}. {o}" for letter, o in zip(MMLU_LETTERS, options)) + "\nAnswer:"


def read_mmlu(path: Path, split: str = "test") -> dict[str, list[MCItem]]:
    """Subject -> items of one split of the hendrycks release (a .tar.xz or its extracted directory)."""
    files: dict[str, str] = {}
    suffix = f"_{split}.csv"
    if path.is_dir():
        for p in sorted((path / "data" / split).glob(f"*{suffix}")):
            files[p.name[:-len(suffix)]] = p.read_text(encoding="utf-8")
    else:
        with tarfile.open(path) as tar:
            for m in sorted(tar.getmembers(), key=lambda m: m.name):
                if m.isfile() and m.name.endswith(suffix) and f"/{split}/" in m.name:
                    files[Path(m.name).name[:-len(suffix)]] = tar.extractfile(m).read().decode("utf-8")
    if not files:
        raise UserError(f"'{path}' has no data/{split}/*_{split}.csv files; pass the MMLU release (mmlu.tar.xz)")
    out = {}
    for subject, text in files.items():
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        out[subject] = [mc_item(mmlu_question(r), MMLU_LETTERS, MMLU_LETTERS.index(r[5].strip()), subject)
                        for r in rows]
    return out
