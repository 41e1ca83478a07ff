import pytest

from scratchllm.charlm.data import load_corpus, looks_like_lines, split_items
from scratchllm.tokenizer.char import CharTokenizer
from scratchllm.errors import UserError
from scratchllm.tokenizer import load_tokenizer


def test_sorted_chars_with_boundary_at_zero():
    tok = CharTokenizer.from_text("emma\nolivia\nava", boundary=".")
    assert tok.itos == [".", "a", "e", "i", "l", "m", "o", "v"]
    assert tok.eot_id == 0 and tok.vocab_size == 8
    assert tok.decode(tok.encode("olivia")) == "olivia"


def test_stream_tokenizer_keeps_newline_and_has_no_eot():
    tok = CharTokenizer.from_text("ab\nba")
    assert tok.itos == ["\n", "a", "b"] and tok.eot_id is None


def test_save_load_and_dispatch(tmp_path):
    tok = CharTokenizer.from_text("héllo wörld", boundary=".")
    tok.save(tmp_path / "tokenizer.json")
    for loaded in (CharTokenizer.load(tmp_path / "tokenizer.json"), load_tokenizer(tmp_path / "tokenizer.json")):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.itos == tok.itos and loaded.eot_id == 0
        assert loaded.decode(loaded.encode("wörld")) == "wörld"


def test_unknown_character_is_a_user_error():
    with pytest.raises(UserError, match="'z' is not in"):
        CharTokenizer.from_text("abc").encode("abz")


def test_mode_detection(words_file, prose_file):
    assert looks_like_lines(words_file.read_text())
    assert not looks_like_lines(prose_file.read_text())
    assert load_corpus(words_file).mode == "lines"
    assert load_corpus(prose_file).mode == "stream"
    assert load_corpus(prose_file, mode="lines").tokenizer.eot_id == 0


def test_splits():
    items = [f"w{i}" for i in range(100)]
    s = split_items(items, "lines", seed=1)
    assert [len(s[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    assert sorted(sum(s.values(), [])) == sorted(items)
    assert split_items(items, "lines", seed=1) == s
    text = "x" * 1000
    assert [len(v[0]) for v in split_items([text], "stream").values()] == [900, 100]


def test_default_corpus_is_builtin():
    c = load_corpus(None)
    assert c.mode == "lines" and len(c.items) > 5000
    assert c.tokenizer.itos == ["."] + [chr(i) for i in range(ord("a"), ord("z") + 1)]
