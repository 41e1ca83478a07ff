"""Shared fixtures: OpenAI's tokenizers, ours and tiktoken's, built once per test session from the
shared files (through `require_shared`: skipped when absent, a failure in CI)."""

from __future__ import annotations

import pytest
from shared_data import require_shared
from tok_paths import TOKDIR


def _ours(name: str):
    from scratchllm.tokenizer import formats

    if name == "gpt2":
        require_shared("tokenizer/gpt2/encoder.json", "tokenizer/gpt2/vocab.bpe")
        return formats.import_gpt2(TOKDIR / "gpt2" / "encoder.json", TOKDIR / "gpt2" / "vocab.bpe")
    return formats.import_tiktoken(require_shared(f"tokenizer/{name}.tiktoken"), name)


def _reference(name: str):
    """tiktoken's own Encoding (its ranks loader, pattern and special tokens), reading the local files."""
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load as tl
    import tiktoken_ext.openai_public as pub

    saved = pub.load_tiktoken_bpe, pub.data_gym_to_mergeable_bpe_ranks
    # the constructors name download URLs; point their loaders at the local copies instead
    pub.load_tiktoken_bpe = lambda url, expected_hash=None: tl.load_tiktoken_bpe(str(TOKDIR / url.split("/")[-1]))
    pub.data_gym_to_mergeable_bpe_ranks = lambda **kw: tl.data_gym_to_mergeable_bpe_ranks(
        str(TOKDIR / "gpt2" / "vocab.bpe"), str(TOKDIR / "gpt2" / "encoder.json"))
    try:
        spec = pub.ENCODING_CONSTRUCTORS[name]()
    finally:
        pub.load_tiktoken_bpe, pub.data_gym_to_mergeable_bpe_ranks = saved
    return tiktoken.Encoding(**spec)


@pytest.fixture(scope="session")
def openai_pair():
    """name -> (our Tokenizer, tiktoken.Encoding), loaded lazily and cached for the session."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            ours = _ours(name)
            cache[name] = (ours, _reference(name))
        return cache[name]

    return get
