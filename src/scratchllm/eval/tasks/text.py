"""Readers for the text tasks: WikiText-2 articles, any text file, LAMBADA's last words.

WikiText-2 comes in its tokenized form (" @-@ ", " , ", `<unk>`). It is split into articles at
its top-level headings (" = Title = ") and detokenized with the usual rules (numbers' separators
and punctuation rejoined), as lm-eval scores the document-level raw set; word counts are the
whitespace-separated words of the detokenized article, as in lm-eval's word_perplexity.

>>> detokenize_wikitext("1 @,@ 000 people , he said .")
'1,000 people, he said.'
>>> [a.words for a in split_wikitext(" = A = \\n x y\\n = B = \\n z\\n")]
[5, 4]
"""

from __future__ import annotations

import re
from pathlib import Path

from scratchllm.data.sources import open_text
from scratchllm.eval.tasks.base import PairItem, TextItem, read_jsonl_rows

_HEADING = re.compile(r"^ = [^=].* = $")
# (tokenized, detokenized) pairs, applied in order
_JOINS = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
          (" ! ", "! "), (" ? ", "? "), (" , ", ", "), (" 's", "'s"), ("s ' ", "s' "),
          ("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \n", "\n"), ("\n ", "\n")]


def detokenize_wikitext(text: str) -> str:
    for a, b in _JOINS:
        text = text.replace(a, b)
    text = re.sub(r"\(\s*([^)]*?)\s*\)", r"(\1)", text)          # "( x )" -> "(x)"
    text = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', text)          # '" x "' -> '"x"'
    return re.sub(r" ([.,;:!?])$", r"\1", text, flags=re.M)       # a sentence's final " ."


def text_item(text: str) -> TextItem:
    return TextItem(text, len(re.split(r"\s+", text)), len(text.encode("utf-8")))


def split_wikitext(raw: str) -> list[TextItem]:
    articles: list[list[str]] = []
    for line in raw.splitlines(keepends=True):
        if _HEADING.match(line.rstrip("\n")) or not articles:
            articles.append([])
        articles[-1].append(line)
    texts = [detokenize_wikitext("".join(a)).strip() for a in articles]
    return [text_item(t) for t in texts if t]


def read_wikitext(path: Path) -> list[TextItem]:
    with open_text(path) as f:
        return split_wikitext(f.read())


def read_text_file(path: Path) -> list[TextItem]:
    """A whole file as one document (bits per byte of any text)."""
    with open_text(path) as f:
        return [text_item(f.read())]


def read_lambada(path: Path) -> list[PairItem]:
    return [PairItem(row["context"].rstrip(), " " + row["continuation"].strip())
            for _, row in read_jsonl_rows(path, ("context", "continuation"))]
