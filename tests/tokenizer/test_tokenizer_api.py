"""The Tokenizer's surface around the merge: batch encoding (which path, which settings pass
through), the tiktoken backend handing work to tiktoken and the Python one never touching it,
training's checks and warnings, files, pickling, and every message word for word."""

from __future__ import annotations

import json
import pickle
import random
import warnings

import pytest

from scratchllm.errors import UserError
from scratchllm.tokenizer import bpe, parallel
from scratchllm.tokenizer.bpe import Tokenizer, _bpe_merge_heap, bpe_merge

SPECIAL = "<|endoftext|>"
MB = 1_000_000


def _bytes_tok(**kw) -> Tokenizer:
    ranks = {bytes([i]): i for i in range(256)} | {b"he": 256, b"ll": 257, b"hell": 258, b"hello": 259}
    return Tokenizer(ranks, "gpt2", {SPECIAL: 260}, **kw)


@pytest.fixture
def calls(monkeypatch):
    """Record parallel_encode's calls instead of starting processes."""
    seen = []
    monkeypatch.setattr(parallel, "parallel_encode",
                        lambda tok, texts, workers, kwargs: seen.append((tok, texts, workers, kwargs)) or ["pool"])
    return seen


@pytest.mark.parametrize("n_texts, chars, workers, pooled", [
    (4, MB, 2, True),             # 2 workers, 2 texts each, a million characters: the pool
    (3, MB, 2, False),            # fewer than 2 texts a worker
    (4, MB - 1, 2, False),        # under a million characters
    (6, MB, 3, True), (5, MB, 3, False),
    (4, MB, 1, False),            # one worker
])
def test_batches_go_to_the_process_pool_only_when_big_enough(calls, n_texts, chars, workers, pooled):
    tok = _bytes_tok()
    texts = ["x" * (chars // n_texts)] * (n_texts - 1)
    texts.append("x" * (chars - sum(map(len, texts))))
    kwargs = {"allowed_special": "all"}
    got = tok.encode_batch(texts, num_workers=workers, **kwargs)
    if pooled:
        assert got == ["pool"] and calls == [(tok, texts, workers, kwargs)]
    else:
        assert calls == [] and len(got) == n_texts


@pytest.mark.parametrize("cores, pooled", [(2, True), (None, False)])   # os.cpu_count() may say None
def test_the_default_worker_count_is_the_cores(calls, monkeypatch, cores, pooled):
    monkeypatch.setattr(bpe.os, "cpu_count", lambda: cores)
    _bytes_tok().encode_batch(["x" * (MB // 4)] * 4)
    assert [c[2] for c in calls] == ([2] if pooled else [])


def test_a_small_batch_passes_the_special_token_settings_on():
    tok = _bytes_tok()
    texts = [f"hello{SPECIAL}", "hello"]
    assert tok.encode_batch(texts, allowed_special="all") == [[259, 260], [259]]
    assert tok.encode_batch(texts, disallowed_special=()) == [tok.encode(t, disallowed_special=()) for t in texts]


def test_the_python_backend_never_needs_tiktoken(monkeypatch):
    tok = _bytes_tok()

    def missing():
        raise AssertionError("the python backend called tiktoken")

    monkeypatch.setattr(tok, "to_tiktoken", missing)
    assert tok.encode_ordinary(f"hello{SPECIAL}") == tok._encode_chunk(f"hello{SPECIAL}")
    assert tok.encode(f"hello{SPECIAL}", allowed_special="all") == [259, 260]
    assert tok.encode_batch(["hello", "hell"]) == [[259], [258]]


class _Spy:
    """Stands in for a tiktoken.Encoding and records what it is asked."""

    def __init__(self, real):
        self.real, self.asked = real, []

    def encode(self, text, **kw):
        self.asked.append(("encode", text, kw))
        return self.real.encode(text, **kw)

    def encode_ordinary(self, text):
        self.asked.append(("encode_ordinary", text))
        return self.real.encode_ordinary(text)

    def encode_batch(self, texts, **kw):
        self.asked.append(("encode_batch", texts, kw))
        return self.real.encode_batch(texts, **kw)


def test_the_tiktoken_backend_hands_the_work_to_tiktoken(monkeypatch):
    pytest.importorskip("tiktoken")
    tok = _bytes_tok(backend="tiktoken")
    texts = [f"hello{SPECIAL}", "hell"]
    as_text = [_bytes_tok().encode(t, disallowed_special=()) for t in texts]
    spy = _Spy(tok.to_tiktoken())
    monkeypatch.setattr(tok, "to_tiktoken", lambda: spy)
    assert tok.encode_ordinary("hello") == [259]
    assert tok.encode(f"hello{SPECIAL}", allowed_special="all") == [259, 260]
    assert spy.asked.pop() == ("encode", f"hello{SPECIAL}", {"allowed_special": {SPECIAL}, "disallowed_special": ()})
    # the specials to honour are checked here (for our message), then tiktoken encodes on its threads
    assert tok.encode_batch(texts, allowed_special="all", num_workers=3) == [[259, 260], [258]]
    assert tok.encode_batch(texts, disallowed_special=()) == as_text
    assert spy.asked == [("encode_ordinary", "hello"),
                         ("encode_batch", texts, {"num_threads": 3, "allowed_special": {SPECIAL},
                                                  "disallowed_special": ()}),
                         ("encode_batch", texts, {"num_threads": spy.asked[2][2]["num_threads"],
                                                  "allowed_special": set(), "disallowed_special": ()})]
    with pytest.raises(UserError, match="text contains the special token"):
        tok.encode_batch(texts)


def test_an_unknown_id_names_the_vocabulary_range():
    tok = _bytes_tok()
    with pytest.raises(UserError) as err:
        tok.decode([259, 999])
    assert str(err.value) == ("token id 999 is outside this tokenizer's vocabulary (0..260); "
                              "check that model and tokenizer belong together")


def _corpus() -> list[str]:
    rng = random.Random(0)
    words = ["hello", "world", "token", "merge", "byte", "pair"]
    return [" ".join(rng.choice(words) for _ in range(30)) for _ in range(20)]


def test_training_checks_its_settings_with_exact_messages():
    with pytest.raises(UserError) as err:
        Tokenizer.train(_corpus(), 300, special_tokens=["<a>", "<a>"], progress=False)
    assert str(err.value) == "a special token is listed twice; list each special token once"
    with pytest.raises(UserError) as err:
        Tokenizer.train(_corpus(), 257, special_tokens=["<a>", "<b>"], progress=False)
    assert str(err.value) == ("vocab_size 257 is too small: 256 byte tokens + 2 special tokens need at least 258")
    smallest = Tokenizer.train(_corpus(), 258, special_tokens=["<a>", "<b>"], progress=False)   # the bound itself
    assert smallest.vocab_size == 258 and smallest.special_tokens == {"<a>": 256, "<b>": 257}


def test_training_names_the_tokenizer_and_keeps_specials_out_of_the_merges():
    text = [f"hello{SPECIAL}world{SPECIAL}"] * 40
    tok = Tokenizer.train(text, 262, special_tokens=[SPECIAL], progress=False, name="mine")
    assert tok.name == "mine" and Tokenizer.train(_corpus(), 270, progress=False).name == ""
    learned = [b for b, i in tok.ranks.items() if i >= 256]
    assert learned and not [b for b in learned if b"<|" in b or b"|>" in b or b"endoftext" in b]
    assert tok.eot_id == tok.vocab_size - 1


def test_training_shows_progress_unless_asked_not_to(capsys):
    Tokenizer.train(_corpus(), 270, special_tokens=[])
    assert capsys.readouterr().err
    Tokenizer.train(_corpus(), 270, special_tokens=[], progress=False)
    assert capsys.readouterr().err == ""


def test_running_out_of_pairs_warns_the_caller_once_and_a_full_vocabulary_does_not():
    with pytest.warns(UserWarning) as record:
        tok = Tokenizer.train(["abab"], 400, special_tokens=[SPECIAL], progress=False)
    n = tok.vocab_size
    assert [str(w.message) for w in record] == [
        f"the text ran out of pairs to merge: vocabulary has {n} ids, not 400; train on more text for a larger vocabulary"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Tokenizer.train(["abab"], n, special_tokens=[SPECIAL], progress=False).vocab_size == n


def test_the_running_out_warning_points_at_the_callers_line():
    with pytest.warns(UserWarning) as record:
        Tokenizer.train(["abab"], 400, special_tokens=[], progress=False)
    assert record[0].filename == __file__                       # stacklevel=2: the caller's line, not bpe.py's


def test_files_keep_the_name_and_loading_checks_what_it_reads(tmp_path):
    tok = _bytes_tok(name="mine")
    tok.save(tmp_path / "tok.json")
    back = Tokenizer.load(tmp_path / "tok.json")
    assert (back.name, back.ranks, back.special_tokens, back.backend) == ("mine", tok.ranks, tok.special_tokens, "python")
    pytest.importorskip("tiktoken")
    assert Tokenizer.load(tmp_path / "tok.json", backend="tiktoken").backend == "tiktoken"
    cases = {
        "missing.json": (None, "tokenizer file '{p}' does not exist; pass the path of a tokenizer JSON"),
        "broken.json": ("{", "tokenizer file '{p}' is not valid JSON (Expecting property name enclosed in double "
                             "quotes: line 1 column 2 (char 1)); re-create it"),
        "hf.json": (json.dumps({"type": "hf"}), "'{p}' is a 'hf' tokenizer, not 'bpe'; use scratchllm.tokenizer.load_tokenizer"),
        "list.json": ("[1]", "'{p}' is a None tokenizer, not 'bpe'; use scratchllm.tokenizer.load_tokenizer"),
        "novocab.json": (json.dumps({"type": "bpe", "pattern": "gpt2"}),
                         "'{p}' is not a valid bpe tokenizer file (KeyError: 'vocab'); re-create it"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(UserError) as err:
            Tokenizer.load(path)
        assert str(err.value) == message.format(p=path), name


def test_from_dict_names_its_source_in_errors():
    with pytest.raises(UserError) as err:
        Tokenizer.from_dict({"vocab": ["a"], "pattern": "gpt2"})
    assert str(err.value) == "the vocabulary lacks the single byte 0x00; a byte-level BPE needs all 256 bytes as tokens"
    with pytest.raises(UserError) as err:
        Tokenizer.from_dict({"pattern": "gpt2"})
    assert str(err.value) == "tokenizer is not a valid bpe tokenizer file (KeyError: 'vocab'); re-create it"


def test_tiktoken_encoding_is_named_built_once_and_needs_tiktoken(monkeypatch):
    pytest.importorskip("tiktoken")
    assert _bytes_tok().to_tiktoken().name == "scratchllm"
    named = _bytes_tok(name="mine")
    assert named.to_tiktoken().name == "mine" and named.to_tiktoken() is named.to_tiktoken()
    monkeypatch.setitem(__import__("sys").modules, "tiktoken", None)      # as if not installed
    with pytest.raises(UserError) as err:
        _bytes_tok().to_tiktoken()
    assert str(err.value) == "the tiktoken backend needs the tiktoken package; pip install tiktoken"


@pytest.mark.parametrize("backend", ["python", "tiktoken"])
def test_a_pickled_tokenizer_comes_back_whole(backend):
    if backend == "tiktoken":
        pytest.importorskip("tiktoken")
    tok = _bytes_tok(name="mine", backend=backend)
    back = pickle.loads(pickle.dumps(tok))        # what the process pool sends each worker
    assert (back.ranks, back.pattern, back.special_tokens, back.name, back.backend) == (
        tok.ranks, tok.pattern, tok.special_tokens, "mine", backend)
    assert back.encode(f"hello{SPECIAL}", allowed_special="all") == [259, 260]


def test_the_heap_merge_equals_the_rescan_on_long_pieces_of_real_merges():
    # a vocabulary learned on English-like text, and pieces hundreds of bytes long made of its
    # words run together: many merges interact along each piece (the heap's linked list is exercised)
    rng = random.Random(1)
    words = ["the", "then", "there", "here", "her", "hello", "yellow", "low", "lower", "owl", "we", "well"]
    corpus = ["".join(rng.choice(words) for _ in range(40)) for _ in range(60)]
    tok = Tokenizer.train(corpus, 400, pattern=r"[\s\S]{1,64}", special_tokens=[], progress=False)
    for _ in range(60):
        piece = "".join(rng.choice(words) for _ in range(rng.randint(20, 120))).encode()
        want = _rescan(tok.ranks, piece)
        assert _bpe_merge_heap(tok.ranks, piece) == want and bpe_merge(tok.ranks, piece) == want


def _rescan(ranks: dict[bytes, int], piece: bytes) -> list[int]:
    """The merge written the slow way: join the lowest-ranked adjacent pair (leftmost on ties) until none is a token."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while True:
        pairs = [(ranks[parts[i] + parts[i + 1]], i) for i in range(len(parts) - 1) if parts[i] + parts[i + 1] in ranks]
        if not pairs:
            return [ranks[p] for p in parts]
        _, i = min(pairs)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def test_a_piece_that_is_a_token_is_that_token_even_when_no_merges_reach_it():
    tiktoken = pytest.importorskip("tiktoken")
    # b"abc" is in the vocabulary, but neither b"ab" nor b"bc" is: only tiktoken's whole-piece rule finds it
    ranks = {bytes([i]): i for i in range(256)} | {b"abc": 256, b"xy": 257}
    tok = Tokenizer(ranks, "gpt2")
    oracle = tiktoken.Encoding(name="t", pat_str=tok.pattern, mergeable_ranks=ranks, special_tokens={})
    for text in ["abc", "abcabc", "abc xy", "xyz abc"]:
        assert tok.encode(text) == oracle.encode(text), text
    assert tok.encode("abc") == [256]


def test_a_tokenizer_keeps_its_name():
    assert _bytes_tok().name == "" and _bytes_tok(name="mine").name == "mine"


@pytest.mark.parametrize("ranks, specials, message", [
    ({bytes([i]): i for i in range(256)} | {b"ab": 5}, {},
     "the vocabulary maps two byte strings to one id; the tokenizer file is corrupt, re-create it"),
    ({bytes([i]): i for i in range(256)}, {"<a>": 200, "<b>": 7},
     "special token id 7 is also a regular token id; give special tokens unused ids"),
    ({bytes([i]): i for i in range(2, 256)}, {},
     "the vocabulary lacks the single byte 0x00; a byte-level BPE needs all 256 bytes as tokens"),
])
def test_a_broken_vocabulary_is_refused_with_its_exact_message(ranks, specials, message):
    with pytest.raises(UserError) as err:
        Tokenizer(ranks, "gpt2", specials)
    assert str(err.value) == message


def test_the_longest_special_token_wins_where_one_is_a_prefix_of_another():
    tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|s|>": 300, "<|s|>x": 301, "<|t|>": 302})
    assert tok.encode("a<|s|>xb<|s|><|t|>", allowed_special="all") == [97, 301, 98, 300, 302]
    with pytest.raises(UserError) as err:
        tok.encode("a<|s|>x")
    assert str(err.value) == ("text contains the special token '<|s|>x'; pass allowed_special={'<|s|>x'} (or 'all') "
                              "to encode it as a special token, or disallowed_special=() to encode it as text")


def test_the_default_split_is_gpt4s_the_one_tiktoken_ships_for_cl100k(monkeypatch):
    pytest.importorskip("tiktoken")
    import tiktoken_ext.openai_public as pub

    monkeypatch.setattr(pub, "load_tiktoken_bpe", lambda *args, **kwargs: {})   # its constructor would download
    assert Tokenizer({bytes([i]): i for i in range(256)}).pattern == pub.cl100k_base()["pat_str"]
