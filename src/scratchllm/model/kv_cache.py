"""A preallocated key/value cache for incremental decoding.

Generating token t+1 needs the keys and values of tokens 0..t in every layer. Recomputing them
each step costs O(T²) per sequence; keeping them costs memory. The cache allocates its
tensors once, for `max_len` positions, and each forward writes the new tokens' keys and values
at `pos .. pos+T` and then advances `pos`. Nothing is reallocated while generating.

>>> import torch
>>> cache = KVCache(n_layer=2, batch_size=1, n_kv_head=2, max_len=8, head_dim=4)
>>> k = v = torch.ones(1, 2, 3, 4)                # keys/values of 3 new tokens
>>> keys, values = cache.update(0, k, v)          # layer 0 sees all cached positions so far
>>> keys.shape
torch.Size([1, 2, 3, 4])
>>> cache.advance(3); cache.pos
3
"""

from __future__ import annotations

import torch

from scratchllm.errors import UserError


class KVCache:
    """Per-layer key and value tensors [B, n_kv_head, max_len, head_dim] plus a position counter."""

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, max_len: int, head_dim: int,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.max_len = max_len
        self.pos = 0  # how many positions are filled (the same in every layer)

    def check_room(self, n_new: int) -> None:
        """Raise a UserError if `n_new` more tokens do not fit."""
        if self.pos + n_new > self.max_len:
            raise UserError(f"the KV cache holds {self.max_len} positions and {self.pos} are used, "
                            f"so {n_new} more do not fit; make the cache with a larger max_len")

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, n_kv, T, hd] at pos..pos+T of `layer`; return all keys/values up to pos+T."""
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n: int) -> None:
        """Move the counter past `n` tokens once every layer has stored them."""
        self.pos += n
