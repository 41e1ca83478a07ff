"""Generation: the KV cache changes nothing but speed; stops; streaming text."""

import pytest
import torch
from torch import nn

from scratchllm.errors import UserError
from scratchllm.inference.engine import generate, generate_text
from scratchllm.model.config import ModelConfig
from scratchllm.model.kv_cache import KVCache
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer

STYLES = {
    "gpt2": dict(),
    "llama": dict(norm="rmsnorm", position="rope", mlp="swiglu", n_kv_head=2, bias=False, tie_embeddings=False),
}


def tiny(style: str, **kw) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=4, n_embd=32, vocab_size=61, block_size=32, **{**STYLES[style], **kw})
    return Transformer(cfg).eval()


def greedy_by_recomputation(model, prompt, n):
    """The oracle: run the whole sequence through the model for every new token, no cache."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("style", STYLES)
def test_kv_cache_greedy_equals_full_recomputation(style):
    model = tiny(style)
    prompt = [3, 14, 15, 9, 26, 5]
    assert list(generate(model, prompt, 20, temperature=0)) == greedy_by_recomputation(model, prompt, 20)


@pytest.mark.parametrize("style", STYLES)
def test_generation_stops_when_the_context_is_full(style):
    model = tiny(style)
    prompt = list(range(1, 29))                       # 28 of 32 positions
    out = list(generate(model, prompt, 100, temperature=0))
    # 4 tokens fill the context; the prediction made from the full context is the 5th and last.
    assert len(out) == 5
    assert out[:4] == greedy_by_recomputation(model, prompt, 4)


def test_stop_id_ends_generation_and_is_not_yielded():
    model = tiny("gpt2")
    full = list(generate(model, [1, 2], 15, temperature=0))
    stop = full[6]
    out = list(generate(model, [1, 2], 15, temperature=0, stop_ids=[stop]))
    assert out == full[:full.index(stop)]


def test_seeded_sampling_is_reproducible():
    model = tiny("llama")
    a = list(generate(model, [1, 2, 3], 12, temperature=1.0, top_k=10, seed=7))
    b = list(generate(model, [1, 2, 3], 12, temperature=1.0, top_k=10, seed=7))
    c = list(generate(model, [1, 2, 3], 12, temperature=1.0, top_k=10, seed=8))
    assert a == b and a != c


def test_padding_ids_beyond_the_tokenizer_vocab_are_never_sampled():
    model = tiny("gpt2")
    out = list(generate(model, [1], 30, temperature=5.0, seed=0, vocab_size=10))
    assert len(out) == 30 and max(out) < 10


def test_prompt_longer_than_context_is_one_line_error():
    model = tiny("gpt2")
    with pytest.raises(UserError, match="block_size=32") as e:
        list(generate(model, list(range(40)), 5))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="empty"):
        list(generate(model, [], 5))


class Scripted(nn.Module):
    """A stand-in model that says `script` whatever the prompt, so text handling can be tested exactly."""

    def __init__(self, script: list[int], vocab_size: int = 257):
        super().__init__()
        self.config = ModelConfig(n_layer=1, n_head=1, n_embd=8, vocab_size=vocab_size, block_size=256)
        self.tok_emb = nn.Embedding(vocab_size, 8)
        self.script, self.calls = script, 0

    def make_kv_cache(self, batch_size=1, max_len=None, **_):
        return KVCache(1, batch_size, 1, max_len or 256, 8)

    def forward(self, idx, kv_cache=None):
        kv_cache.advance(idx.shape[1])
        logits = torch.zeros(1, idx.shape[1], self.config.vocab_size)
        logits[0, -1, self.script[self.calls]] = 100.0
        self.calls += 1
        return logits


@pytest.fixture
def byte_tokenizer():
    # One token per byte, so a multi-byte character always spans several tokens.
    return Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})


def test_text_stream_never_splits_a_utf8_character(byte_tokenizer):
    text = "héllo 🙂 wörld"
    model = Scripted(list(text.encode()) + [256])
    pieces = list(generate_text(model, byte_tokenizer, "x", max_new_tokens=50, temperature=0))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert "🙂" in pieces                              # its 4 bytes came out as one piece


def test_text_stops_on_eot_and_stop_strings(byte_tokenizer):
    script = list(b"User: hi\nBot: hello\nUser: again") + [256]
    pieces = list(generate_text(Scripted(script), byte_tokenizer, "x", 100, temperature=0, stop=["\nUser:"]))
    assert "".join(pieces) == "User: hi\nBot: hello"
    assert "".join(generate_text(Scripted(script), byte_tokenizer, "x", 100, temperature=0)) == \
        "User: hi\nBot: hello\nUser: again"


def test_partial_stop_string_is_released_when_it_does_not_complete(byte_tokenizer):
    script = list(b"a\nUsb\nU") + [256]
    pieces = list(generate_text(Scripted(script), byte_tokenizer, "x", 100, temperature=0, stop=["\nUser:"]))
    assert "".join(pieces) == "a\nUsb\nU"
    assert pieces[0] == "a"                           # "\n" waited: it could have begun "\nUser:"


def test_empty_prompt_starts_from_end_of_text(byte_tokenizer):
    model = Scripted(list(b"ok") + [256])
    assert "".join(generate_text(model, byte_tokenizer, "", 10, temperature=0)) == "ok"
