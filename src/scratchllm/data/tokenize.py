"""Text -> a token directory: shards of ids, split into train and val by document, plus meta.json.

    out/
      train-00000.bin ...   val-00000.bin ...   (scratchllm.data.shards format)
      tokenizer.json        the tokenizer that made the ids
      meta.json             {"vocab_size", "eot_id", "tokenizer_sha256",
                             "splits": {"train": {"tokens", "bytes", "documents"}, "val": {...}}}

Each document goes to val when a hash of (seed, its index) falls below `val_fraction`: the
split is deterministic, independent of worker count, and never cuts a document in two (so no
val text leaks into train). "bytes" counts the UTF-8 bytes of each split's text, which turns a
loss in nats per token into bits per byte, a figure that compares across tokenizers.
Encoding runs in `workers` processes on batches of documents, streamed: memory stays bounded
by the shard size, whatever the corpus size. The directory appears only once complete.

>>> import tempfile
>>> from scratchllm.tokenizer import Tokenizer
>>> tok = Tokenizer.train(["hello world"] * 20, vocab_size=270, progress=False)
>>> meta = write_token_dir((f"doc {i} hello world" for i in range(100)), tok,
...                        tempfile.mkdtemp() + "/tok", workers=1, progress=False)
>>> meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"]
100
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from scratchllm.data.shards import ShardWriter
from scratchllm.errors import UserError
from scratchllm.tokenizer import load_tokenizer
from scratchllm.utils.atomic import atomic_directory, atomic_write_text
from scratchllm.utils.files import read_json
from scratchllm.utils.pool import batched, ordered_map

BATCH_CHARS = 1_000_000  # text handed to a worker at once: big enough to amortise the inter-process copy


def is_val(index: int, seed: int, val_fraction: float) -> bool:
    """Deterministic split: document `index` is validation iff hash(seed, index) < val_fraction."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < val_fraction


_worker_tok = None


def with_fast_backend(tok):
    """`tok` switched to the tiktoken backend when it is installed (same ids, ~10x faster); returns `tok`."""
    # without tiktoken the pure-Python backend stays
    if getattr(tok, "backend", None) == "python":
        try:  # optional dependency: tiktoken is the `fast` extra
            import tiktoken  # noqa: F401
            tok.backend = "tiktoken"
        except ImportError:
            pass
    return tok


def _init_worker(tokenizer_path: str) -> None:
    global _worker_tok
    _worker_tok = with_fast_backend(load_tokenizer(tokenizer_path))


def _encode(texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(_worker_tok.encode_ordinary(t), dtype=np.int64) for t in texts]


def encode_documents(texts: Iterable[str], tokenizer_path: Path, workers: int) -> Iterator[tuple[str, np.ndarray]]:
    """(text, ids) per document in input order; at most 2 batches a worker in flight (bounded memory)."""
    for batch, ids in ordered_map(_encode, batched(texts, BATCH_CHARS), workers, _init_worker, (str(tokenizer_path),)):
        yield from zip(batch, ids)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_token_dir(texts: Iterable[str], tokenizer, out_dir: str | Path, *, val_fraction: float = 0.02,
                    seed: int = 0, workers: int = 2, shard_tokens: int = 50_000_000,
                    progress: bool = True) -> dict[str, Any]:
    """Tokenize documents `texts` into `out_dir` (shards + tokenizer.json + meta.json); returns meta.

    At least one document goes to each split (the last train document moves to val if the hash
    chose none), so any corpus of two or more documents gives a usable directory.
    """
    if tokenizer.eot_id is None:
        raise UserError("the tokenizer has no <|endoftext|> token to separate documents; train it with the default special tokens")
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        splits = {s: ShardWriter(tmp, s, tokenizer.vocab_size, tokenizer.eot_id, shard_tokens) for s in ("train", "val")}
        nbytes = {"train": 0, "val": 0}
        held = None  # the latest train document, written one step late in case val needs it
        bar = tqdm(desc="tokenize", unit="B", unit_scale=True, disable=not progress)
        for index, (text, ids) in enumerate(encode_documents(texts, tmp / "tokenizer.json", workers)):
            size = len(text.encode("utf-8"))
            bar.update(size)
            if is_val(index, seed, val_fraction):
                splits["val"].add_document(ids)
                nbytes["val"] += size
                continue
            if held is not None:
                splits["train"].add_document(held[0])
                nbytes["train"] += held[1]
            held = (ids, size)
        bar.close()
        if held is not None:
            target = "val" if splits["val"].n_documents == 0 else "train"
            splits[target].add_document(held[0])
            nbytes[target] += held[1]
        if splits["train"].n_documents == 0 or splits["val"].n_documents == 0:
            raise UserError("the corpus is empty or has a single document; pass more text with --data "
                            "(at least two documents, a few kilobytes)")
        for w in splits.values():
            w.close()
        meta = {"vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id,
                "tokenizer_sha256": _sha256(tmp / "tokenizer.json"), "val_fraction": val_fraction, "seed": seed,
                "splits": {s: {"tokens": w.n_tokens, "bytes": nbytes[s], "documents": w.n_documents}
                           for s, w in splits.items()}}
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2))
    return meta


def read_meta(token_dir: str | Path) -> dict[str, Any]:
    """A token directory's meta.json, with a one-line error when it is not one."""
    path = Path(token_dir) / "meta.json"
    if not path.is_file():
        raise UserError(f"'{token_dir}' is not a token directory (no meta.json); pass raw text with --data "
                        "to have it tokenized, or a directory made by scratchllm")
    return read_json(path, "token directory metadata", bad="re-create the token directory")


def tokens_per_byte(meta: dict[str, Any], split: str = "val") -> float | None:
    """Tokens per UTF-8 byte of a split (None when bytes are unknown), to turn nats/token into bits/byte."""
    s = meta.get("splits", {}).get(split, {})
    return s["tokens"] / s["bytes"] if s.get("bytes") else None
