"""Shared fixtures for the data tests: a tiny tokenizer trained on random prose."""

import pytest
from data_helpers import prose

from scratchllm.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory):
    tok = Tokenizer.train([prose(400, i) for i in range(5)], vocab_size=300, progress=False)
    path = tmp_path_factory.mktemp("tok") / "tok.json"
    tok.save(str(path))
    return path
