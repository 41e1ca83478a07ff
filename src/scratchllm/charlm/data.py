"""Corpora for the first models: read a file (or the built-in default), pick line or stream mode, split.

*Line mode* treats every line as one item (a name, a word): the model sees each item between
boundary tokens and learns to start and stop. *Stream mode* treats the file as one long text
(Shakespeare): no boundary, the model just continues characters. `mode="auto"` picks line mode
for files of short, non-blank lines (a list) and stream mode otherwise (prose, verse with
blank lines between speeches).

The built-in default corpus needs no file and no network: the distinct words of the Unicode
character names that ship with every Python (`unicodedata`), e.g. 'zayin', 'pitchfork',
'gothic' -- about 7,000 short, pronounceable words over a-z, a names-like list.

>>> c = load_corpus(None)
>>> c.mode, len(c.items) > 5000, c.tokenizer.vocab_size
('lines', True, 27)
"""

from __future__ import annotations

import functools
import random
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scratchllm.tokenizer.char import CharTokenizer
from scratchllm.errors import UserError

DEFAULT_NAME = "unicode-words"


@functools.cache
def unicode_words() -> tuple[str, ...]:
    """Distinct lower-case a-z words (2+ letters) of the Unicode character names, sorted.

    Hangul/Yi syllables and CJK ideographs are left out: their names are generated
    ('HANGUL SYLLABLE GGWAEG') and would swamp the list with one pattern.
    """
    words = set()
    for code in range(sys.maxunicode + 1):
        name = unicodedata.name(chr(code), "")
        if not name or "SYLLABLE" in name or "IDEOGRAPH" in name:
            continue
        for word in re.split(r"[ -]", name):
            if len(word) > 1 and word.isascii() and word.isalpha():
                words.add(word.lower())
    return tuple(sorted(words))


def looks_like_lines(text: str) -> bool:
    """A list: at least two lines, none blank, 40 characters or fewer on average."""
    lines = text.rstrip("\n").split("\n")
    return len(lines) >= 2 and all(line.strip() for line in lines) and \
        sum(map(len, lines)) / len(lines) <= 40


@dataclass
class Corpus:
    """Text as items (line mode) or one stream, with its tokenizer and its train/val/test split."""

    name: str
    mode: str                       # "lines" or "stream"
    items: list[str]                # the lines, or [the whole text]
    tokenizer: CharTokenizer
    splits: dict[str, list[str]] = field(default_factory=dict)


def pad_id(tok: CharTokenizer) -> int:
    """Context fill before the first character: the boundary, else a newline, else id 0."""
    if tok.eot_id is not None:
        return tok.eot_id
    return tok.stoi.get("\n", 0)


def split_items(items: list[str], mode: str, seed: int = 42) -> dict[str, list[str]]:
    """Lines: shuffled 80/10/10 train/val/test. Stream: the first 90% train, the last 10% val."""
    if mode == "stream":
        text = items[0]
        cut = int(0.9 * len(text))
        return {"train": [text[:cut]], "val": [text[cut:]]}
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return {"train": shuffled[:n1], "val": shuffled[n1:n2], "test": shuffled[n2:]}


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file '{path}' does not exist; pass an existing text file with --data")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"data file '{path}' is not UTF-8 text; convert it or pass another file") from None
    if not text.strip():
        raise UserError(f"data file '{path}' is empty; pass a file with at least a few lines of text")
    return text


def load_corpus(path: str | Path | None, mode: str = "auto", seed: int = 42) -> Corpus:
    """Read `path` (None = the built-in Unicode words) in `mode` ('auto', 'lines', 'stream') and split it."""
    if mode not in ("auto", "lines", "stream"):
        raise UserError(f"data mode '{mode}' is unknown; choose auto, lines or stream")
    if path is None:
        text, name = "\n".join(unicode_words()), DEFAULT_NAME
    else:
        text, name = read_text(path), Path(path).name
    text = text.replace("\r\n", "\n")
    if mode == "auto":
        mode = "lines" if looks_like_lines(text) else "stream"
    if mode == "lines":
        items = [line for line in text.split("\n") if line.strip()]
        if len(items) < 10:
            raise UserError(f"data '{name}' has {len(items)} non-blank lines; line mode needs at least 10")
        # '.' is makemore's boundary; a list that uses '.' itself gets the (otherwise unused) newline.
        boundary = "." if not any("." in s for s in items) else "\n"
        tok = CharTokenizer.from_text("".join(items), boundary=boundary)
    else:
        items = [text]
        if len(text) < 100:
            raise UserError(f"data '{name}' has {len(text)} characters; stream mode needs at least 100")
        tok = CharTokenizer.from_text(text)
    return Corpus(name, mode, items, tok, split_items(items, mode, seed))


def examples(corpus: Corpus, items: list[str], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y): every character of `items` as a target Y with the `context` ids before it in X.

    In line mode each item is padded with `context` boundary ids in front and ends with one
    boundary target, so `.emma.` with context 3 gives `... -> e`, `..e -> m`, ..., `mma -> .`.
    """
    tok = corpus.tokenizer
    pad = pad_id(tok)
    seq: list[int] = []
    is_target: list[bool] = []
    for item in items:
        ids = tok.encode(item) + ([tok.eot_id] if corpus.mode == "lines" else [])
        seq += [pad] * context + ids
        is_target += [False] * context + [True] * len(ids)
    # One pass over the whole sequence: every window of context+1 ending on a real character.
    windows = torch.tensor(seq, dtype=torch.long).unfold(0, context + 1, 1)
    windows = windows[torch.tensor(is_target[context:])]
    return windows[:, :-1].contiguous(), windows[:, -1].contiguous()
