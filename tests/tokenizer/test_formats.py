"""Files: our JSON, .tiktoken, GPT-2 import, HF tokenizer.json export/import; one trained tokenizer,
three encoders (ours, tiktoken, HF tokenizers), identical ids."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchllm.tokenizer import char as vocab
from scratchllm.errors import UserError
from scratchllm.tokenizer import Tokenizer, bpe_json, formats, load_tokenizer

from test_parity import TEXTS

SRC = Path(__file__).resolve().parents[2] / "src" / "scratchllm"


@pytest.fixture(scope="module")
def trained() -> Tokenizer:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SRC.rglob("*.py"))][:40]
    texts += list(TEXTS.values())[:-2] * 3  # a little CJK, emoji, RTL so multi-byte merges exist
    return Tokenizer.train(texts, 700, "gpt4", num_workers=1, progress=False, name="test700")


@pytest.fixture(scope="module")
def hf_trained(trained, tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    formats.export_hf(trained, path)
    return tokenizers.Tokenizer.from_file(str(path))


def test_escape_roundtrip_all_bytes():
    data = bytes(range(256)) + b"\\x41\\\\"
    s = bpe_json.escape_bytes(data)
    assert s.isascii() and s.isprintable()
    assert bpe_json.unescape_bytes(s) == data
    assert bpe_json.escape_bytes(b" the") == " the"


def test_json_roundtrip(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    d = json.loads(path.read_text())
    assert d["type"] == "bpe" and d["special_tokens"]["<|endoftext|>"] == trained.eot_id
    assert " the" in d["vocab"] or "self" in d["vocab"]  # human-readable merges
    again = Tokenizer.load(path)
    assert again.ranks == trained.ranks and again.special_tokens == trained.special_tokens
    assert again.pattern == trained.pattern
    assert load_tokenizer(path).ranks == trained.ranks


def test_trained_tokenizer_tiktoken_and_hf_agree(trained, hf_trained):
    tik = trained.to_tiktoken()
    for text in list(TEXTS.values())[:-2] + [Path(__file__).read_text(encoding="utf-8").replace("<|", "<")]:
        ids = trained.encode(text)
        assert ids == tik.encode(text), text
        assert ids == hf_trained.encode(text).ids, text
        assert hf_trained.decode(ids, skip_special_tokens=False) == text
    text = "<|user_start|>hi<|user_end|> <|endoftext|>"
    assert trained.encode(text, allowed_special="all") == hf_trained.encode(text).ids


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_trained_property_three_encoders(trained, hf_trained, text):
    ids = trained.encode(text, disallowed_special=())
    assert ids == trained.to_tiktoken().encode(text, disallowed_special=())
    if "<|" not in text:  # HF always splits special tokens out
        assert ids == hf_trained.encode(text).ids
    assert trained.decode(ids) == text


def test_tiktoken_file_roundtrip(trained, tmp_path):
    tiktoken_load = pytest.importorskip("tiktoken.load")
    path = tmp_path / "t.tiktoken"
    formats.write_tiktoken(trained, path)
    assert tiktoken_load.load_tiktoken_bpe(str(path)) == trained.ranks  # tiktoken reads our file
    again = formats.import_tiktoken(path, "gpt4", special_tokens=trained.special_tokens)
    assert again.ranks == trained.ranks


def test_hf_import_roundtrip(trained, tmp_path):
    path = tmp_path / "tokenizer.json"
    formats.export_hf(trained, path)
    again = formats.import_hf(path)
    assert again.ranks == trained.ranks and again.special_tokens == trained.special_tokens
    assert again.pattern == trained.pattern
    assert load_tokenizer(tmp_path).ranks == trained.ranks  # a directory: its tokenizer.json


def test_gpt2_exported_to_hf_matches_tiktoken(openai_pair, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    ours, ref = openai_pair("gpt2")
    path = tmp_path / "gpt2.json"
    formats.export_hf(ours, path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    for text in list(TEXTS.values())[:-2]:
        assert hf.encode(text).ids == ref.encode(text)


def test_cl100k_exported_to_hf_matches_tiktoken(openai_pair, tmp_path):
    # HF's Oniguruma reads cl100k's possessive `\p{N}{1,3}+` as unbounded repetition: the export
    # must write the equivalent greedy form, or long numbers split differently
    tokenizers = pytest.importorskip("tokenizers")
    ours, ref = openai_pair("cl100k_base")
    formats.export_hf(ours, tmp_path / "cl.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "cl.json"))
    for text in [TEXTS["numbers"], TEXTS["prose"], TEXTS["code"], "12345678901234567890 2024-06-01"]:
        assert hf.encode(text).ids == ref.encode(text)
    assert formats.import_hf(tmp_path / "cl.json").pattern == ours.pattern


def test_gpt2_import_cli_json_roundtrip(openai_pair, tmp_path):
    ours, _ = openai_pair("gpt2")
    ours.save(tmp_path / "gpt2.json")
    again = load_tokenizer(tmp_path / "gpt2.json")
    assert again.ranks == ours.ranks and again.eot_id == 50256


def test_char_type_dispatch(tmp_path):
    tok = vocab.CharTokenizer.from_text("abc")
    tok.save(tmp_path / "c.json")
    assert load_tokenizer(tmp_path / "c.json").encode("cab") == tok.encode("cab")


@pytest.mark.parametrize("content, match", [
    ("not json", "not valid JSON"),
    ('{"type": "wordpiece"}', "expected 'bpe' or 'char'"),
    ('{"type": "bpe", "pattern": "gpt2"}', "not a valid bpe tokenizer"),
    ('{"type": "bpe", "pattern": "gpt2", "vocab": ["a"]}', "lacks the single byte"),
])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        load_tokenizer(path)


def test_missing_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(tmp_path / "nope.json")
    with pytest.raises(UserError, match="does not exist"):
        formats.read_tiktoken(tmp_path / "nope.tiktoken")
    (tmp_path / "x.tiktoken").write_text("not base64 at all\n")
    with pytest.raises(UserError, match="base64 rank"):
        formats.read_tiktoken(tmp_path / "x.tiktoken")


def test_unknown_id_and_backend():
    tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
    with pytest.raises(UserError, match="outside this tokenizer's vocabulary"):
        tok.decode([999])
    with pytest.raises(UserError, match="unknown tokenizer backend"):
        tok.backend = "rust"


def test_hf_import_gpt2_style_special_in_vocab(openai_pair):
    # GPT-2's own tokenizer.json: <|endoftext|> is both vocab entry 50256 and a special added token
    ours, ref = openai_pair("gpt2")
    d = formats.to_hf_dict(ours)
    d["model"]["vocab"]["<|endoftext|>"] = 50256
    d["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok = formats.tokenizer_from_hf_dict(d)
    assert tok.eot_id == 50256 and tok.ranks == ours.ranks and tok.pattern == ours.pattern
    text = "Hello<|endoftext|> world"
    assert tok.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")


def test_trained_on_newer_characters_matches_tiktoken():
    import regex

    from scratchllm.tokenizer.patterns import resolve_pattern, split_like_tiktoken
    from scratchllm.tokenizer.train import count_pretokens
    from test_parity import _newer_sample

    chars = _newer_sample()
    texts = [f"a{c}b {c}{c}x {c}1 " * 3 for c in chars] + ["plain words here"] * 5
    pat = regex.compile(resolve_pattern("o200k"))
    counts = count_pretokens(texts, pat.pattern, num_workers=1, progress=False)
    # training counts the pieces the encoder (and tiktoken) will see, not the raw regex's
    assert counts == Counter(p for t in texts for p in split_like_tiktoken(pat, t))
    assert counts != Counter(p for t in texts for p in pat.findall(t))
    tok = Tokenizer.train(texts, 400, "o200k", special_tokens=["<|endoftext|>"], num_workers=1, progress=False)
    tik = tok.to_tiktoken()
    for t in texts:
        assert tok.encode(t) == tik.encode(t)
