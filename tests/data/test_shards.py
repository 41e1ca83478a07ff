"""Token shards against the documented byte layout, read back by an independent `struct` reader:
the uint16/uint32 choice (ids above 65,535 must survive), the header fields, and the errors for a
foreign, truncated or unsupported file."""

import struct

import numpy as np
import pytest

from scratchllm.data.shards import ShardWriter, dtype_for_vocab, list_shards, read_shard
from scratchllm.errors import UserError


def _read_by_layout(path):
    """The shard format of the shards.py docstring, parsed by hand: 64-byte header, little-endian ids."""
    raw = path.read_bytes()
    magic, version, itemsize, count = struct.unpack_from("<8sIIQ", raw)
    assert magic == b"SLLMTOKS" and version == 1 and raw[24:64] == bytes(40)
    ids = struct.unpack_from(f"<{count}{'H' if itemsize == 2 else 'I'}", raw, 64)
    assert len(raw) == 64 + count * itemsize
    return itemsize, list(ids)


@pytest.mark.parametrize("vocab_size, itemsize", [(65_536, 2), (65_537, 4), (200_019, 4)])
def test_ids_round_trip_in_the_smallest_width(tmp_path, vocab_size, itemsize):
    docs = [[0, 1, vocab_size - 1], [65_535 % vocab_size, vocab_size - 2]]
    with ShardWriter(tmp_path, "train", vocab_size=vocab_size, separator=vocab_size - 1, shard_tokens=4) as w:
        for doc in docs:
            w.add_document(doc)
    expected = [vocab_size - 1, *docs[0], vocab_size - 1, *docs[1]]
    paths = list_shards(tmp_path, "train")
    assert [p.name for p in paths] == ["train-00000.bin", "train-00001.bin"]   # 7 tokens in shards of 4
    by_layout = [_read_by_layout(p) for p in paths]
    assert {size for size, _ in by_layout} == {itemsize} == {dtype_for_vocab(vocab_size).itemsize}
    assert sum((ids for _, ids in by_layout), []) == expected
    assert np.concatenate([read_shard(p) for p in paths]).tolist() == expected


def test_out_of_range_id_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vocab_size 300"):
        ShardWriter(tmp_path, "train", vocab_size=300, separator=0).add_document([299, 300])


def _shard(tmp_path, ids=(1, 2, 3)):
    with ShardWriter(tmp_path, "val", vocab_size=70_000, separator=0) as w:
        w.add_document(list(ids))
    return list_shards(tmp_path, "val")[0]


@pytest.mark.parametrize("damage, match", [
    (lambda raw: raw[:-1], "truncated or corrupt"),
    (lambda raw: raw + b"\0\0\0\0", "truncated or corrupt"),
    (lambda raw: b"NOTTOKS!" + raw[8:], "not a scratchllm token shard"),
    (lambda raw: raw[:30], "not a scratchllm token shard"),
    (lambda raw: raw[:8] + struct.pack("<I", 2) + raw[12:], "unsupported version 2"),
    (lambda raw: raw[:12] + struct.pack("<I", 8) + raw[16:], "token size 8"),
])
def test_damaged_shard_is_a_one_line_error(tmp_path, damage, match):
    path = _shard(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError, match=match) as e:
        read_shard(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_shard_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(UserError, match="scratchllm data prepare"):
        read_shard(tmp_path / "train-00000.bin")
