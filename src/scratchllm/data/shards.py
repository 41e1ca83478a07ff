"""The token shard format: a 64-byte header, then the token ids as little-endian uint16/uint32.

    offset  size  field
    0       8     magic  b"SLLMTOKS"
    8       4     version (1)
    12      4     bytes per token (2 for vocabularies up to 65,536 ids, else 4)
    16      8     number of tokens
    24      40    zero padding

Documents are concatenated, each one preceded by a separator token (the tokenizer's
end-of-text id), the way GPT-2 and nanoGPT lay out their training streams. Shards of one
split are named `train-00000.bin`, `train-00001.bin`, ... and read back as memory maps, so
a corpus larger than RAM costs nothing to open.

>>> import tempfile, numpy as np
>>> d = tempfile.mkdtemp()
>>> with ShardWriter(d, "train", vocab_size=300, separator=0) as w:
...     w.add_document([5, 6, 7])
...     w.add_document([8])
>>> read_shard(list_shards(d, "train")[0]).tolist()
[0, 5, 6, 7, 0, 8]
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable

import numpy as np

from scratchllm.errors import UserError
from scratchllm.utils.atomic import atomic_write_bytes

MAGIC = b"SLLMTOKS"
VERSION = 1
HEADER_SIZE = 64
_HEADER = struct.Struct("<8sIIQ")


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (half the disk and memory), else uint32."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def encode_header(n_tokens: int, dtype: np.dtype) -> bytes:
    header = _HEADER.pack(MAGIC, VERSION, np.dtype(dtype).itemsize, n_tokens)
    return header + bytes(HEADER_SIZE - len(header))


def write_shard(path: str | Path, tokens: np.ndarray) -> None:
    """Write one shard atomically; `tokens` must already be uint16 or uint32."""
    tokens = np.ascontiguousarray(tokens)
    if tokens.dtype.itemsize not in (2, 4) or tokens.dtype.kind != "u":
        raise ValueError(f"shard tokens must be uint16 or uint32, got {tokens.dtype}")
    atomic_write_bytes(path, encode_header(len(tokens), tokens.dtype) + tokens.astype(tokens.dtype.newbyteorder("<")).tobytes())


def read_shard(path: str | Path) -> np.memmap:
    """Open a shard as a read-only memory map, checking its header against the file size."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"token shard '{path}' does not exist; run `scratchllm data prepare` to create it")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE or head[:8] != MAGIC:
        raise UserError(f"'{path}' is not a scratchllm token shard (bad header); re-create it with `scratchllm data prepare`")
    _, version, itemsize, count = _HEADER.unpack(head[: _HEADER.size])
    if version != VERSION or itemsize not in (2, 4):
        raise UserError(f"token shard '{path}' has unsupported version {version} or token size {itemsize}; re-create it")
    if size != HEADER_SIZE + count * itemsize:
        raise UserError(f"token shard '{path}' is truncated or corrupt ({size} bytes, header says {count} tokens); re-create it")
    if count == 0:
        return np.zeros(0, dtype=f"<u{itemsize}")  # np.memmap cannot map zero bytes
    return np.memmap(path, dtype=f"<u{itemsize}", mode="r", offset=HEADER_SIZE, shape=(count,))


def list_shards(directory: str | Path, split: str) -> list[Path]:
    """The shards of one split (`train`, `val`) in order."""
    return sorted(Path(directory).glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].bin"))


class ShardWriter:
    """Stream documents into fixed-size shards; each shard file appears only when complete.

    Memory use is bounded by `shard_tokens`. Documents may span shard boundaries.
    """

    def __init__(self, directory: str | Path, split: str, vocab_size: int, separator: int,
                 shard_tokens: int = 100_000_000):
        self.directory = Path(directory)
        self.split = split
        self.dtype = dtype_for_vocab(vocab_size)
        self.vocab_size = vocab_size
        self.separator = separator
        self.shard_tokens = shard_tokens
        self.paths: list[Path] = []
        self.n_tokens = 0
        self.n_documents = 0
        self._buf = np.empty(shard_tokens, dtype=self.dtype)
        self._fill = 0

    def add_document(self, ids: Iterable[int]) -> None:
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token id out of range for vocab_size {self.vocab_size}")
        doc = np.concatenate([[self.separator], ids]).astype(self.dtype)
        self.n_documents += 1
        self.n_tokens += len(doc)
        while len(doc):
            take = min(len(doc), self.shard_tokens - self._fill)
            self._buf[self._fill : self._fill + take] = doc[:take]
            self._fill += take
            doc = doc[take:]
            if self._fill == self.shard_tokens:
                self._flush()

    def _flush(self) -> None:
        if self._fill == 0:
            return
        path = self.directory / f"{self.split}-{len(self.paths):05d}.bin"
        write_shard(path, self._buf[: self._fill])
        self.paths.append(path)
        self._fill = 0

    def close(self) -> list[Path]:
        self._flush()
        return self.paths

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
