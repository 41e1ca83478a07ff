"""A preallocated key/value cache for incremental decoding, with a length per row.

Generating token t+1 needs the keys and values of tokens 0..t in every layer. Recomputing them
each step costs O(T²) per sequence; keeping them costs memory. The cache allocates its
tensors once, for `max_len` positions, and nothing is reallocated while generating.

Two modes, one class:
- **uniform** (every row holds the same number of positions, `pos`): a forward writes its T
  tokens at `pos .. pos+T` of every row by slicing, and attention reads keys `0 .. pos+T`.
  This is one prompt, or a batch of equal-length prompts: the fast, simple path.
- **ragged** (`lengths[b]` differs per row, after `set_lengths`): row b writes at
  `lengths[b] ..`, attends to its own first positions only, and advances alone. This is what
  batched prompts of mixed lengths and continuous batching need (a row is a slot that requests
  enter and leave). Everything stays on the device: no host sync per step.

>>> import torch
>>> cache = KVCache(n_layer=2, batch_size=1, n_kv_head=2, max_len=8, head_dim=4)
>>> k = v = torch.ones(1, 2, 3, 4)                # keys/values of 3 new tokens
>>> keys, values = cache.update(0, k, v)          # layer 0 sees all cached positions so far
>>> keys.shape
torch.Size([1, 2, 3, 4])
>>> cache.advance(3); cache.pos
3
>>> cache.set_lengths(torch.tensor([2])); cache.uniform, cache.lengths.tolist()
(False, [2])
>>> row = cache.rows(0, 1); row.advance(1); cache.lengths.tolist()   # a view: the row moves here too
[3]
"""

from __future__ import annotations

import torch

from scratchllm.errors import UserError


class KVCache:
    """Per-layer key and value tensors [B, n_kv_head, max_len, head_dim] plus a length per row."""

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, max_len: int, head_dim: int,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.max_len = max_len
        self.lengths = torch.zeros(batch_size, dtype=torch.long, device=device)  # filled positions per row
        self._pos: int | None = 0   # the common length while every row has it; None once rows differ
        self._index: tuple[torch.Tensor, torch.Tensor] | None = None   # this forward's write index (ragged)

    @property
    def uniform(self) -> bool:
        """True while every row holds the same number of positions."""
        return self._pos is not None

    @property
    def pos(self) -> int:
        """Filled positions (the longest row's count once rows differ, which costs a host sync)."""
        return self._pos if self._pos is not None else int(self.lengths.max())

    def set_lengths(self, lengths: torch.Tensor) -> None:
        """Declare how many positions each row holds (e.g. true prompt lengths after a right-padded
        prefill: the padding's keys past a row's length are overwritten by its next tokens)."""
        # subtle: copy in place, so a captured CUDA graph that reads `lengths` sees the new values
        # (copy_ itself casts to long and moves to the cache's device).
        self.lengths.copy_(lengths)
        self._pos, self._index = None, None

    def rows(self, start: int, stop: int) -> "KVCache":
        """A ragged cache over rows start..stop-1 that shares this one's tensors (writes land here).

        The engine prefills one slot through such a view while the other slots keep their state.
        """
        view = KVCache.__new__(KVCache)
        view.k = [k[start:stop] for k in self.k]
        view.v = [v[start:stop] for v in self.v]
        view.max_len, view.lengths, view._pos, view._index = self.max_len, self.lengths[start:stop], None, None
        return view

    def check_room(self, n_new: int) -> None:
        """Raise a UserError if `n_new` more tokens do not fit (checked only where no sync is needed)."""
        if self._pos is not None:
            used = self._pos
        elif self.lengths.device.type == "cpu":
            used = int(self.lengths.max())
        else:
            return   # on an accelerator the engine sizes the cache; a check here would sync every step
        if used + n_new > self.max_len:
            raise UserError(f"the KV cache holds {self.max_len} positions and {used} are used, "
                            f"so {n_new} more do not fit; make the cache with a larger max_len")

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, n_kv, T, hd] after each row's filled positions; return the keys/values to attend.

        Uniform: the first pos+T positions. Ragged: all max_len positions (the attention mask built
        from `lengths` hides each row's unused ones).
        """
        if self._pos is not None:
            end = self._pos + k.shape[2]
            self.k[layer][:, :, self._pos:end] = k
            self.v[layer][:, :, self._pos:end] = v
            return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        rows, slots = self._index if self._index is not None else self.write_index(k.shape[2])
        # subtle: indexing [rows, :, slots] puts the broadcast [B, T] index dims first: [B, T, n_kv, hd].
        self.k[layer][rows, :, slots] = k.transpose(1, 2).to(self.k[layer].dtype)
        self.v[layer][rows, :, slots] = v.transpose(1, 2).to(self.v[layer].dtype)
        return self.k[layer], self.v[layer]

    def write_index(self, n_new: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [B, 1], slots [B, T]): where row b's n_new tokens go, lengths[b] .. lengths[b]+T.

        Kept until the cache advances, so every layer of one forward writes through one index (a
        decode step is otherwise 2 of its few hundred kernels per layer, recomputing the same thing).
        """
        device = self.lengths.device
        rows = torch.arange(self.lengths.shape[0], device=device)[:, None]
        self._index = rows, self.lengths[:, None] + torch.arange(n_new, device=device)
        return self._index

    def truncate(self, length: int) -> None:
        """Forget every position past `length` in every row (speculative decoding rolls back rejected
        drafts this way: their keys stay in memory, to be overwritten by the next tokens)."""
        self.lengths.clamp_(max=length)
        self._index = None
        if self._pos is not None:
            self._pos = min(self._pos, length)

    def advance(self, n: int) -> None:
        """Move every row past `n` tokens once every layer has stored them."""
        self.lengths += n
        self._index = None
        if self._pos is not None:
            self._pos += n
