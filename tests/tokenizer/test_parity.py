"""Our encoder against tiktoken itself on OpenAI's gpt2 / cl100k_base / o200k_base, from the shared files."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchllm.errors import UserError

from tok_paths import ENCODINGS

TEXTS = {
    "prose": "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it? I'LL say WE'VE won.",
    "code": "def f(x):\n\tif x >= 10:\n        return {'a': [1, 2]}  # done\r\n\n\n    }\n",
    "numbers": "3.14159 1,000,000 0x1F 2024-06-01 12345678901234567890 1e-9 ١٢٣",
    "whitespace": "a  b   c\t\t d\n\n\n e \r\n\r\n   \n  x   ",
    "cjk": "我们是中国人。日本語のテキスト、カタカナ。한국어 문장입니다.",
    "emoji_zwj": "family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽 heart ❤️ keycap 1️⃣",
    "combining": "café vs cafe\u0301, Z\u0351\u0364a\u0301\u0301lgo, नमस्ते, ñ",
    "rtl": "שלום עולם! مرحبا بالعالم. \u202eevil\u202c mixed עברית and English",
    "lone_surrogates": "a\ud800b \udfff c \ud83d\ude00 d\ud83d",
    "control": "\x00\x01\x7f\u200b\ufeff\u00a0nbsp\u2028\u3000",
}


@pytest.mark.parametrize("name", ENCODINGS)
@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_same_ids_as_tiktoken(openai_pair, name, kind):
    ours, ref = openai_pair(name)
    text = TEXTS[kind]
    assert ours.encode(text) == ref.encode(text)
    assert ours.encode_ordinary(text) == ref.encode_ordinary(text)


@pytest.mark.parametrize("name", ENCODINGS)
def test_endoftext_allowed_and_as_text(openai_pair, name):
    ours, ref = openai_pair(name)
    text = "end of doc<|endoftext|>next doc <|endoftext|>"
    assert ours.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
    assert ours.encode(text, allowed_special={"<|endoftext|>"}) == ref.encode(text, allowed_special={"<|endoftext|>"})
    assert ours.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
    assert ours.eot_id in ours.encode(text, allowed_special="all")
    assert ours.eot_id not in ours.encode(text, disallowed_special=())
    with pytest.raises(UserError, match=r"<\|endoftext\|>.*allowed_special"):
        ours.encode(text)
    with pytest.raises(ValueError):
        ref.encode(text)


@pytest.mark.parametrize("name", ENCODINGS)
def test_decode_like_tiktoken(openai_pair, name):
    ours, ref = openai_pair(name)
    ids = ref.encode(TEXTS["emoji_zwj"] + TEXTS["cjk"])
    assert ours.decode(ids) == ref.decode(ids)
    for cut in range(1, 12):  # partial UTF-8 at the end: replacement characters, as tiktoken
        assert ours.decode(ids[:cut]) == ref.decode(ids[:cut])
        assert ours.decode_bytes(ids[:cut]) == ref.decode_bytes(ids[:cut])


@pytest.mark.parametrize("name", ENCODINGS)
def test_tiktoken_backend_and_batch(openai_pair, name):
    ours, ref = openai_pair(name)
    texts = list(TEXTS.values())
    expect = [ref.encode(t) for t in texts]
    assert ours.encode_batch(texts) == expect
    assert ours.encode_batch(texts * 40, num_workers=2) == expect * 40  # process pool path: all 400, in order
    ours.backend = "tiktoken"
    try:
        assert [ours.encode(t) for t in texts] == expect
        assert ours.encode_batch(texts) == expect
        with pytest.raises(UserError):
            ours.encode("<|endoftext|>")
        with pytest.raises(UserError):
            ours.encode_batch(["a", "<|endoftext|>"])
        eot = "x<|endoftext|>"
        assert ours.encode_batch([eot], allowed_special="all") == [ref.encode(eot, allowed_special="all")]
    finally:
        ours.backend = "python"


text_strategy = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
mixed_strategy = st.lists(st.sampled_from(["a", " ", "  ", "\n", "\r\n", "'s", "'LL", "1", "123", "é", "e\u0301",
                                           "中", "👍", "\u200d", "!", "?!", "\t", "A", "Ab", " x"]),
                          max_size=20).map("".join)


@pytest.mark.parametrize("name", ENCODINGS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(text_strategy, mixed_strategy))
def test_property_parity_and_roundtrip(openai_pair, name, text):
    ours, ref = openai_pair(name)
    ids = ours.encode(text, disallowed_special=())
    assert ids == ref.encode(text, disallowed_special=())
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert ours.decode(ids) == fixed  # round trip (lone surrogates come back as U+FFFD)


@pytest.mark.parametrize("name", ENCODINGS)
def test_long_pieces(openai_pair, name):
    ours, ref = openai_pair(name)
    import base64
    import random

    blob = base64.b64encode(random.Random(0).randbytes(3000)).decode()
    for text in ["a" * 5000, " " * 3000 + "x", "\n" * 2000, blob, "ab" * 2000, "é" * 1500, "1" * 999]:
        assert ours.encode(text) == ref.encode(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=st.binary(min_size=2, max_size=60) | st.text(max_size=40).map(lambda s: s.encode("utf-8", "replace")))
def test_heap_merge_equals_rescan_merge(openai_pair, piece):
    from scratchllm.tokenizer.bpe import _bpe_merge_heap, bpe_merge

    ours, _ = openai_pair("cl100k_base")
    if len(piece) >= 2 and piece not in ours.ranks:
        assert _bpe_merge_heap(ours.ranks, piece) == bpe_merge(ours.ranks, piece)


def _newer_sample() -> list[str]:
    import regex

    from scratchllm.tokenizer.patterns import NEWER_THAN_TIKTOKEN

    ends = [int(x, 16) for x in regex.findall(r"\\U([0-9a-f]{8})", NEWER_THAN_TIKTOKEN)]
    return [chr(cp) for cp in ends[::3]]


@pytest.mark.parametrize("name", ENCODINGS)
def test_characters_newer_than_tiktoken_unicode(openai_pair, name):
    # Unicode 17 letters/marks/digits: the regex module knows them, tiktoken's tables do not
    ours, ref = openai_pair(name)
    for ch in _newer_sample():
        for text in [f"{ch}a {ch}1 x{ch}{ch} \n{ch}'s ", f"word{ch}word", f"{ch}{ch}{ch}", f" {ch}ab"]:
            assert ours.encode(text) == ref.encode(text), hex(ord(ch))
    text = "".join(_newer_sample()) + " plain text"
    assert ours.encode(text) == ref.encode(text)
    assert ours.encode(text) == ours.encode(text)  # nothing wrong was cached the first time
