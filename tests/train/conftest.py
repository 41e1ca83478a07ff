"""Shared fixtures for the training tests: a tiny token directory and a tiny run config."""

import numpy as np
import pytest

from scratchllm.data.shards import ShardWriter

VOCAB = 64


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory):
    """Train/val shards of documents with learnable structure (each token mostly follows the last + 1)."""
    d = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(0)
    for split, n_docs in (("train", 60), ("val", 10)):
        with ShardWriter(d, split, vocab_size=VOCAB, separator=0) as w:
            for _ in range(n_docs):
                start = rng.integers(1, VOCAB)
                steps = np.where(rng.random(80) < 0.8, 1, rng.integers(1, VOCAB, size=80))
                w.add_document((start + np.cumsum(steps)) % (VOCAB - 1) + 1)
    return d
