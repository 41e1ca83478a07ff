"""KVCache on its own: what each row holds equals the concatenation of the keys and values fed to it
(the plainest reference), in both modes, after views, rollbacks and at the exact capacity limit.

Fast on purpose: mutation testing (bench/mutation.py) runs this file once per mutant."""

from __future__ import annotations

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.model.kv_cache import KVCache

N_KV, HD = 2, 3


def _kv(batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_KV, n, HD, generator=g), torch.randn(batch, N_KV, n, HD, generator=g)


def test_uniform_writes_return_everything_fed_so_far():
    cache = KVCache(n_layer=2, batch_size=2, n_kv_head=N_KV, max_len=7, head_dim=HD)
    fed_k, fed_v = [], []
    for step, n in enumerate((3, 1, 3)):          # 7 positions: exactly full
        k, v = _kv(2, n, step)
        cache.check_room(n)
        keys, values = cache.update(1, k, v)
        cache.advance(n)
        fed_k.append(k), fed_v.append(v)
        assert torch.equal(keys, torch.cat(fed_k, dim=2)) and torch.equal(values, torch.cat(fed_v, dim=2))
    assert cache.uniform and cache.pos == 7 and cache.lengths.tolist() == [7, 7]
    assert torch.equal(cache.k[0], torch.zeros(2, N_KV, 7, HD))   # layer 0 was never written
    with pytest.raises(UserError, match="7 positions and 7 are used, so 1 more do not fit"):
        cache.check_room(1)


def test_ragged_rows_continue_from_their_own_lengths_up_to_the_last_slot():
    cache = KVCache(n_layer=1, batch_size=3, n_kv_head=N_KV, max_len=6, head_dim=HD)
    start = torch.tensor([1, 4, 0])
    cache.set_lengths(start)
    assert not cache.uniform and cache.pos == 4
    fed = [[] for _ in range(3)]
    for step in range(2):                           # row 1 ends exactly at max_len
        cache.check_room(1)
        k, v = _kv(3, 1, 10 + step)
        keys, values = cache.update(0, k, v)
        cache.advance(1)
        assert keys.shape == (3, N_KV, 6, HD)       # ragged: all slots, a mask hides the unused ones
        for b in range(3):
            fed[b].append((k[b], v[b]))
    assert cache.lengths.tolist() == [3, 6, 2] and cache.pos == 6
    for b in range(3):
        s = int(start[b])
        assert torch.equal(cache.k[0][b, :, s:s + 2], torch.cat([k for k, _ in fed[b]], dim=1))
        assert torch.equal(cache.v[0][b, :, s:s + 2], torch.cat([v for _, v in fed[b]], dim=1))
    assert torch.equal(cache.k[0][2, :, 2:], torch.zeros(N_KV, 4, HD))   # nothing written past a row's end
    with pytest.raises(UserError, match="6 positions and 6 are used"):
        cache.check_room(1)


def test_ragged_writes_of_several_tokens_and_the_uniform_path_agree():
    uniform = KVCache(n_layer=1, batch_size=2, n_kv_head=N_KV, max_len=5, head_dim=HD)
    ragged = KVCache(n_layer=1, batch_size=2, n_kv_head=N_KV, max_len=5, head_dim=HD)
    ragged.set_lengths(torch.tensor([0, 0]))
    k, v = _kv(2, 5, 3)
    uniform.update(0, k, v)
    keys, values = ragged.update(0, k, v)
    assert torch.equal(keys, uniform.k[0]) and torch.equal(values, uniform.v[0])


def test_room_is_checked_in_both_modes_at_the_boundary():
    cache = KVCache(n_layer=1, batch_size=2, n_kv_head=1, max_len=8, head_dim=HD)
    cache.advance(5)
    cache.check_room(3)                              # 5 + 3 == 8 fits
    with pytest.raises(UserError, match="so 4 more do not fit"):
        cache.check_room(4)
    cache.set_lengths(torch.tensor([2, 6]))          # the longest row decides
    cache.check_room(2)
    with pytest.raises(UserError, match="8 positions and 6 are used, so 3 more"):
        cache.check_room(3)


def test_a_cache_keeps_its_dtype_and_casts_what_it_stores():
    cache = KVCache(n_layer=1, batch_size=2, n_kv_head=N_KV, max_len=4, head_dim=HD, dtype=torch.bfloat16)
    assert {t.dtype for t in cache.k + cache.v} == {torch.bfloat16} and cache.lengths.dtype == torch.long
    cache.set_lengths(torch.tensor([1.0, 2.0]))      # any integer-valued tensor is accepted
    assert cache.lengths.dtype == torch.long and cache.lengths.tolist() == [1, 2]
    k, v = _kv(2, 2, 4)
    keys, values = cache.update(0, k, v)             # fp32 in, bf16 stored (the autocast case)
    assert keys.dtype == values.dtype == torch.bfloat16
    assert torch.equal(keys[0, :, 1:3], k[0].to(torch.bfloat16)) and torch.equal(values[1, :, 2:4], v[1].to(torch.bfloat16))


def test_a_cache_lives_on_the_device_it_is_made_for():
    cache = KVCache(n_layer=2, batch_size=2, n_kv_head=N_KV, max_len=4, head_dim=HD, device="meta")
    assert {t.device.type for t in cache.k + cache.v + [cache.lengths]} == {"meta"}
    cache.set_lengths(torch.tensor([1, 2]))
    rows, slots = cache.write_index(2)
    assert rows.device.type == slots.device.type == "meta"
    cache.check_room(1000)                           # off the CPU the engine sizes the cache: no sync


def test_rows_view_shares_tensors_and_lengths():
    cache = KVCache(n_layer=1, batch_size=3, n_kv_head=N_KV, max_len=6, head_dim=HD)
    cache.set_lengths(torch.tensor([1, 2, 3]))
    view = cache.rows(1, 3)
    assert not view.uniform and view.max_len == 6 and view.lengths.tolist() == [2, 3]
    k, v = _kv(2, 2, 5)
    view.update(0, k, v)
    view.advance(2)
    assert cache.lengths.tolist() == [1, 4, 5]
    assert torch.equal(cache.k[0][1, :, 2:4], k[0]) and torch.equal(cache.v[0][2, :, 3:5], v[1])
    assert torch.equal(cache.k[0][0], torch.zeros(N_KV, 6, HD))      # row 0 untouched


def test_truncate_rolls_back_every_row_in_both_modes():
    cache = KVCache(n_layer=1, batch_size=2, n_kv_head=1, max_len=8, head_dim=HD)
    cache.advance(6)
    cache.truncate(4)
    assert cache.uniform and cache.pos == 4 and cache.lengths.tolist() == [4, 4]
    cache.truncate(5)                                # never grows
    assert cache.pos == 4 and cache.lengths.tolist() == [4, 4]
    cache.set_lengths(torch.tensor([2, 7]))
    cache.truncate(5)
    assert cache.lengths.tolist() == [2, 5] and cache.pos == 5
