"""Shared fixtures: OpenAI's tokenizers, ours and tiktoken's, built once per test session from the
shared files (tests that need them skip when the files are absent)."""

from __future__ import annotations

import pytest
from tok_paths import TOKDIR


def _ours(name: str):
    from scratchllm.tokenizer import formats

    if name == "gpt2":
        files = [TOKDIR / "gpt2" / "encoder.json", TOKDIR / "gpt2" / "vocab.bpe"]
        if not all(f.is_file() for f in files):
            pytest.skip("GPT-2 tokenizer files not available")
        return formats.import_gpt2(*files)
    path = TOKDIR / f"{name}.tiktoken"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return formats.import_tiktoken(path, name)


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
