"""Loader (random windows, resumable, rank-aware, fixed val windows) and text -> token directory."""

import json

import numpy as np
import pytest
import torch

from scratchllm.data.builtin import builtin_documents, read_corpus, split_long
from scratchllm.data.loader import TokenLoader, val_windows
from scratchllm.data.shards import list_shards, read_shard
from scratchllm.data.tokenize import is_val, write_token_dir
from scratchllm.errors import UserError
from scratchllm.tokenizer import Tokenizer


def test_windows_come_from_the_shards_and_targets_are_shifted(token_dir):
    stream = np.concatenate([np.asarray(read_shard(p)) for p in list_shards(token_dir, "train")])
    x, y = next(TokenLoader(token_dir, "train", 16, 8, seed=0))
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        window = np.concatenate([row_x, row_y[-1:]])
        hits = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(stream, 17) == window, axis=1))
        assert len(hits) >= 1


def test_seeded_resumable_and_rank_aware(token_dir):
    a, b = TokenLoader(token_dir, "train", 16, 4, seed=5), TokenLoader(token_dir, "train", 16, 4, seed=5)
    assert torch.equal(next(a)[0], next(b)[0])
    state = json.loads(json.dumps(a.state_dict()))  # what state.json stores
    expected = [next(a)[0] for _ in range(3)]
    fresh = TokenLoader(token_dir, "train", 16, 4, seed=123)
    fresh.load_state_dict(state)
    assert all(torch.equal(next(fresh)[0], e) for e in expected)
    r0 = TokenLoader(token_dir, "train", 16, 4, seed=5, rank=0, world_size=2)
    r1 = TokenLoader(token_dir, "train", 16, 4, seed=5, rank=1, world_size=2)
    assert not torch.equal(next(r0)[0], next(r1)[0])


def test_val_windows_are_fixed_and_spread(token_dir):
    w1, w2 = val_windows(token_dir, 16, 10), val_windows(token_dir, 16, 10)
    assert w1.shape == (10, 17) and torch.equal(w1, w2)
    assert len({tuple(r.tolist()) for r in w1}) == 10


def test_too_little_data_for_a_window(token_dir):
    with pytest.raises(UserError, match="block_size"):
        TokenLoader(token_dir, "val", 100_000, 4)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train([f"def f{i}(x):\n    return x + {i} * word\n" for i in range(300)], vocab_size=300, progress=False)


def test_token_dir_split_by_document_with_byte_counts(tok, tmp_path):
    docs = [f"doc {i}: " + "word " * (i % 7 + 1) for i in range(200)]
    meta = write_token_dir(iter(docs), tok, tmp_path / "t", val_fraction=0.1, seed=3, workers=1, progress=False)
    val_docs = [d for i, d in enumerate(docs) if is_val(i, 3, 0.1)]
    assert meta["splits"]["val"]["documents"] == len(val_docs) > 0
    assert meta["splits"]["val"]["bytes"] == sum(len(d.encode()) for d in val_docs)
    val = np.concatenate([np.asarray(read_shard(p)) for p in list_shards(tmp_path / "t", "val")])
    expect = np.concatenate([[tok.eot_id, *tok.encode_ordinary(d)] for d in val_docs])
    assert np.array_equal(val, expect)  # each document after an end-of-text separator, in order
    assert meta["splits"]["train"]["tokens"] + meta["splits"]["val"]["tokens"] == sum(
        len(tok.encode_ordinary(d)) + 1 for d in docs)
    assert {"vocab_size", "eot_id", "tokenizer_sha256"} <= set(meta)


def test_token_dir_is_the_same_with_two_workers(tok, tmp_path, monkeypatch):
    import scratchllm.data.tokenize as tokenize

    monkeypatch.setattr(tokenize, "BATCH_CHARS", 200)  # many batches, so the pool really interleaves
    docs = [f"line {i} " * 20 for i in range(120)]
    write_token_dir(iter(docs), tok, tmp_path / "one", workers=1, progress=False)
    write_token_dir(iter(docs), tok, tmp_path / "two", workers=2, progress=False)
    for name in ("train-00000.bin", "val-00000.bin", "meta.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_builtin_corpus_is_deterministic_and_capped():
    a = list(builtin_documents(max_bytes=300_000))
    assert a == list(builtin_documents(max_bytes=300_000)) and len(a) > 3
    assert sum(len(d.encode()) for d in a) < 300_000 + 70_000


def test_long_texts_are_cut_at_line_breaks(tmp_path):
    text = "".join(f"line {i}\n" for i in range(20_000))
    pieces = list(split_long(text, 10_000))
    assert "".join(pieces) == text and all(p.endswith("\n") for p in pieces) and len(pieces) > 5
    (tmp_path / "a.txt").write_text(text)
    assert "".join(read_corpus(str(tmp_path / "a.txt"))) == text
