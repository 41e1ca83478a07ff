"""The capstone's data stages: raw books -> a BPE tokenizer -> cleaned, filtered, deduplicated shards.

`scratchllm speedrun --preset capstone` (see pipelines/speedrun.py) starts from raw Project
Gutenberg books, not from a ready token directory. Two stages here:

1. tokenizer: byte-level BPE trained on the *train* books only, after the recipe's cleaning
   (Gutenberg licence header and footer cut, NFC, line endings), up to `data.tokenizer_bytes`.
   A book is held out by the same hash `data prepare` uses for its val split
   (`mix.unit_hash(seed, "val:" + id)`), so the tokenizer never sees a held-out book.
   It runs before `data prepare` because prepare needs a tokenizer to plan the mix (tokens per
   byte) and write shards; it sees text before the quality filters and dedup, which drop ~4% of
   the books (bench/RESULTS.md, data pipeline), a difference a 32k vocabulary does not notice.
   subtle: a corpus so small that no book hashes into val (fewer than ~1/val_fraction books)
   gets its lowest-hash book as val from prepare; the tokenizer has read that one.
2. data: the recipe (default: the packaged `gutenberg` one) with `--data` as its books:
   clean, filter, dedup, mix up to `prepare.tokens` train tokens, tokenize into `OUT/data/tokens`
   (train shards + the held-out books as val).

This module knows nothing of training: it only makes files.

>>> s = prepare_settings(["books=4", "tokens=0"])
>>> recipe = capstone_recipe("../shared/data/pretrain/gutenberg", s)
>>> recipe.sources[0].paths, recipe.sources[0].limit, recipe.mix.total_tokens
(['../shared/data/pretrain/gutenberg'], 4, 0)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from scratchllm.config import apply_overrides
from scratchllm.data.clean import clean_text
from scratchllm.data.mix import unit_hash
from scratchllm.data.prepare import prepare
from scratchllm.data.recipe import Recipe, load_recipe
from scratchllm.data.sources import read_documents
from scratchllm.errors import UserError
from scratchllm.tokenizer import Tokenizer


@dataclass
class PrepareSettings:
    """`prepare.KEY=VALUE` overrides of `scratchllm speedrun --preset capstone`."""
    recipe: str = "gutenberg"       # packaged recipe name or a TOML path; its sources' paths become --data
    books: int = 0                  # read at most this many documents per source (0: all; for quick runs)
    tokens: int = 100_000_000       # target train tokens of the mix (0: every kept book once)
    workers: int = 0                # processes (0: one per CPU core)


def prepare_settings(overrides: list[str]) -> PrepareSettings:
    """PrepareSettings with `KEY=VALUE` overrides applied (a misspelt key is a UserError)."""
    return apply_overrides(PrepareSettings(), overrides)


def capstone_recipe(data: str, settings: PrepareSettings) -> Recipe:
    """The recipe with `data` (a directory or file of raw books) as every file source's input."""
    recipe = load_recipe(settings.recipe)
    sources = [dataclasses.replace(s, paths=[data], limit=settings.books or s.limit) if s.type == "files" else s
               for s in recipe.sources]
    mix = dataclasses.replace(recipe.mix, total_tokens=settings.tokens)
    return dataclasses.replace(recipe, sources=sources, mix=mix, workers=settings.workers or os.cpu_count() or 1)


def train_books(recipe: Recipe, max_bytes: int) -> Iterator[str]:
    """Cleaned text of the books `data prepare` will not hold out, up to `max_bytes` in all."""
    total = 0
    for src in recipe.sources:
        if src.type != "files":
            continue
        for doc in read_documents(src.paths, src.text_field, src.id_field, source=src.name, limit=src.limit,
                                  encoding=src.encoding):
            if unit_hash(recipe.seed, "val:" + doc.id) < recipe.val_fraction:
                continue
            text = clean_text(doc.text, recipe.clean)
            total += len(text.encode("utf-8"))
            yield text
            if total >= max_bytes:
                return


def train_books_tokenizer(recipe: Recipe, vocab_size: int, max_bytes: int, path: Path, progress: bool) -> dict:
    """Train the BPE on the train books into `path` (tokenizer JSON); returns its figures."""
    texts = list(train_books(recipe, max_bytes))
    if not texts:
        raise UserError(f"no books to train the tokenizer on in {recipe.sources[0].paths}; pass a directory of "
                        "raw books (.jsonl[.xz] with a text field, or .txt files) with --data")
    tok = Tokenizer.train(texts, vocab_size, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return {"vocab_size": tok.vocab_size, "trained_on_bytes": sum(len(t.encode("utf-8")) for t in texts),
            "books": len(texts)}


def prepare_books(recipe: Recipe, tokenizer: Path, out: Path, progress: bool) -> dict:
    """`data prepare` of the books with `tokenizer` into `out`; returns the figures the report shows."""
    manifest = prepare(dataclasses.replace(recipe, tokenizer=str(tokenizer)), out, progress=progress)
    splits = manifest["splits"]
    return {"train_tokens": splits["train"]["tokens"], "val_tokens": splits["val"]["tokens"],
            "train_books": splits["train"]["documents"], "val_books": splits["val"]["documents"],
            "books_read": sum(s["documents_read"] for s in manifest["sources"]),
            "bytes_read": sum(s["bytes_read"] for s in manifest["sources"]),
            "dropped_by_filters": sum(s["dropped_by_filters"] for s in manifest["sources"]),
            "removed_as_duplicates": sum(s["removed_as_duplicates"] for s in manifest["sources"])}
