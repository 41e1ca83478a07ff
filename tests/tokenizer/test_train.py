"""Training: hand-computed merges, agreement with a naive full-rescan trainer, determinism, errors."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import regex

from scratchllm.errors import UserError
from scratchllm.tokenizer import Tokenizer
from scratchllm.tokenizer.patterns import GPT4_PATTERN
from scratchllm.tokenizer.train import count_pretokens, merge_words


def naive_merges(counts: dict[str, int], n_tokens: int) -> list[bytes]:
    """The textbook loop: recount every pair after every merge (slow, obviously right).

    Same rules as the real trainer: most frequent pair, ties to the smallest (left id, right id),
    merges applied left to right, a pair whose bytes are already a token reuses that id.
    """
    vocab = [bytes([i]) for i in range(256)]
    words = {tuple(s.encode()): c for s, c in counts.items()}
    while len(vocab) < n_tokens:
        pairs = Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda x: (-x[1], x[0]))
        joined = vocab[a] + vocab[b]
        if joined in vocab:
            new = vocab.index(joined)
        else:
            new = len(vocab)
            vocab.append(joined)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return vocab


def test_wikipedia_example_by_hand():
    # "aaabdaaabac": aa (4 times) -> Z; then ab and Za tie at 2 and ab = (97, 98) is the smaller
    # pair -> Y; then Z Y ("aaab", twice) -> X; the text becomes X d X a c.
    tok = Tokenizer.train(["aaabdaaabac"], vocab_size=259, pattern=r"\S+", special_tokens=[], progress=False)
    assert [tok.token_bytes(i) for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]


def _random_corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "aab bc ddé\n"  # few symbols: many ties, repeats ("aaaa"), adjacent merges ("abab")
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(40)]


@pytest.mark.parametrize("seed", range(6))
def test_incremental_trainer_matches_naive(seed):
    texts = _random_corpus(seed)
    counts = count_pretokens(texts, GPT4_PATTERN, num_workers=1, progress=False)
    assert merge_words(counts, 330, progress=False) == naive_merges(counts, 330)


def test_matches_naive_on_real_text():
    text = Path(__file__).read_text(encoding="utf-8")[:4000]
    counts = Counter(regex.findall(GPT4_PATTERN, text))
    assert merge_words(counts, 450, progress=False) == naive_merges(counts, 450)


def test_parallel_counting_equals_serial(monkeypatch):
    import scratchllm.tokenizer.train as train

    monkeypatch.setattr(train, "CHUNK_CHARS", 200)  # many chunks, so the pool really splits the work
    texts = _random_corpus(7) * 5 + ["a<|endoftext|>b"]
    serial = count_pretokens(texts, GPT4_PATTERN, ["<|endoftext|>"], num_workers=1, progress=False)
    parallel = count_pretokens(texts, GPT4_PATTERN, ["<|endoftext|>"], num_workers=2, progress=False)
    assert serial == parallel
    assert not any("<|" in k for k in serial)  # special tokens are cut out, never learned


def test_deterministic_and_special_tokens_at_the_end():
    texts = _random_corpus(3)
    a = Tokenizer.train(texts, 300, progress=False, num_workers=1)
    b = Tokenizer.train(texts, 300, progress=False, num_workers=2)
    assert a.ranks == b.ranks
    assert a.vocab_size == 300 and a.eot_id == 292
    assert a.special_tokens["<|assistant_end|>"] == 299
    assert a.encode("<|bos|>x", allowed_special="all")[0] == a.special_tokens["<|bos|>"]


def test_small_corpus_stops_when_no_pairs_are_left():
    with pytest.warns(UserWarning, match="ran out of pairs"):
        tok = Tokenizer.train(["ab ab"], 1000, special_tokens=["<|endoftext|>"], progress=False)
    assert tok.vocab_size == 256 + 2 + 1  # "ab", " ab", then nothing left to merge
    assert tok.eot_id == 258


def test_bad_arguments():
    with pytest.raises(UserError, match="too small"):
        Tokenizer.train(["x"], 100, progress=False)
    with pytest.raises(UserError, match="not a valid regex"):
        Tokenizer.train(["x"], 300, pattern="(", progress=False)
    with pytest.raises(UserError, match="twice"):
        Tokenizer.train(["x"], 300, special_tokens=["<|a|>", "<|a|>"], progress=False)


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "o200k"])
def test_cutting_long_documents_changes_no_piece(monkeypatch, pattern):
    import scratchllm.tokenizer.train as train
    from scratchllm.tokenizer.patterns import resolve_pattern

    rng = random.Random(0)
    bits = ["word", " ", "\n", "\n\n", " \n", "\r\n", ".", "!\n", "12345", "  ", "\t", "é", "'s", "X"]
    text = "".join(rng.choice(bits) for _ in range(3000))
    pat = resolve_pattern(pattern)
    monkeypatch.setattr(train, "CHUNK_CHARS", 50)
    assert len(list(train._cut_long(text))) > 20
    assert count_pretokens([text], pat, num_workers=1, progress=False) == Counter(regex.findall(pat, text))
