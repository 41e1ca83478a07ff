"""Batches for pretraining: random windows of block_size+1 tokens from memory-mapped shards.

Each batch row is a window `w` of `block_size + 1` consecutive tokens; the model reads
`w[:-1]` and is scored on predicting `w[1:]`. Windows start at uniformly random offsets
(documents are already separated by end-of-text tokens, so a window may cross a boundary,
as in GPT-2 and nanoGPT). The random generator is the loader's own, seeded by
`(seed, rank)`: every rank of a distributed run draws different windows, and
`state_dict()` / `load_state_dict()` restore the stream exactly for `--resume`.

Validation uses `val_windows`: a fixed, evenly spaced set of windows, so every evaluation
of every run on the same token directory scores the same tokens and val losses compare.

>>> import tempfile
>>> from scratchllm.data.shards import ShardWriter
>>> d = tempfile.mkdtemp()
>>> with ShardWriter(d, "train", vocab_size=100, separator=0) as w:
...     w.add_document(range(1, 50))
>>> loader = TokenLoader(d, "train", block_size=8, batch_size=4, seed=1)
>>> x, y = next(loader)
>>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())
(torch.Size([4, 8]), True)
>>> state = loader.state_dict(); a = next(loader)[0]
>>> loader.load_state_dict(state); bool(next(loader)[0].equal(a))
True
"""

from __future__ import annotations

import random

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scratchllm.data.shards import list_shards, read_shard
from scratchllm.errors import UserError


def _open_split(directory: str | Path, split: str, min_tokens: int) -> list[np.ndarray]:
    paths = list_shards(directory, split)
    if not paths:
        raise UserError(f"no '{split}' shards in '{directory}'; prepare the data first "
                        "(scratchllm train --data TEXT_PATH tokenizes it, or scratchllm data prepare)")
    shards = [s for s in (read_shard(p) for p in paths) if len(s) >= min_tokens]
    if not shards:
        total = sum(len(read_shard(p)) for p in paths)
        raise UserError(f"the '{split}' split of '{directory}' has {total} tokens, fewer than one window of "
                        f"{min_tokens}; use more data or a smaller model.block_size")
    return shards


class TokenLoader:
    """An endless, resumable, rank-aware stream of (inputs, targets) LongTensor batches [B, T]."""

    def __init__(self, directory: str | Path, split: str, block_size: int, batch_size: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.block_size, self.batch_size = block_size, batch_size
        self.shards = _open_split(directory, split, block_size + 1)
        # A shard is picked in proportion to the windows it holds, so every window is equally likely.
        starts = np.array([len(s) - block_size for s in self.shards], dtype=np.float64)
        self._shard_p = starts / starts.sum()
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rank])))
        self.batches_drawn = 0

    def __iter__(self) -> "TokenLoader":
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.block_size
        which = self._rng.choice(len(self.shards), size=self.batch_size, p=self._shard_p)
        rows = np.empty((self.batch_size, T + 1), dtype=np.int64)
        for i, s in enumerate(which):
            shard = self.shards[s]
            start = int(self._rng.integers(0, len(shard) - T))
            rows[i] = shard[start : start + T + 1]
        self.batches_drawn += 1
        batch = torch.from_numpy(rows)
        return batch[:, :-1], batch[:, 1:]

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position of the stream (the generator's state and a batch counter)."""
        return {"rng": self._rng.bit_generator.state, "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self.batches_drawn = state["batches_drawn"]


def val_windows(directory: str | Path, block_size: int, n_windows: int, split: str = "val") -> torch.Tensor:
    """`n_windows` fixed windows [n, block_size+1], evenly spaced over the split (non-overlapping when it is long enough)."""
    shards = _open_split(directory, split, block_size + 1)
    # Spread windows over shards in proportion to their length: deterministic, no RNG involved.
    lengths = np.array([len(s) for s in shards], dtype=np.float64)
    counts = np.maximum(1, np.floor(n_windows * lengths / lengths.sum()).astype(int))
    counts[-1] = max(1, n_windows - counts[:-1].sum())
    rows = []
    for shard, k in zip(shards, counts):
        last = len(shard) - block_size - 1
        for start in np.linspace(0, last, num=int(k)).round().astype(np.int64):
            rows.append(np.asarray(shard[start : start + block_size + 1], dtype=np.int64))
    return torch.from_numpy(np.stack(rows[:n_windows]))


def window_batches(windows: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed windows cut into (inputs, targets) batches, for the loop's `val_batches`."""
    return [(w[:, :-1], w[:, 1:]) for w in windows.split(batch_size)]


class ShuffledEpochs:
    """Mixin for a resumable batch source over n items: a seeded order per epoch, `batch_size` at a time.

    The class using it has `seed`, `epoch`, `index` and `batch_size` attributes and calls `_start(n)`;
    `state_dict()` (epoch, index) is all a resume needs, since the order is rebuilt from the seed.
    Chat rows (data/chat.py) and preference pairs (data/preference.py) are drawn this way.
    """

    def _start(self, n: int) -> None:
        self._n = n
        self._reshuffle()

    def _reshuffle(self) -> None:
        self._order = list(range(self._n))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(self._order)

    def _next_indices(self) -> list[int]:
        picked = []
        while len(picked) < self.batch_size:
            if self.index >= len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._reshuffle()
            picked.append(self._order[self.index])
            self.index += 1
        return picked

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self._reshuffle()

