"""Shared fixtures for the training tests: a tiny token directory and a tiny run config."""

import numpy as np
import pytest

from scratchllm.data.shards import ShardWriter
from scratchllm.train.config import resolve_run_config

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


def tiny_config(*overrides: str):
    """A model and loop small enough that a step takes milliseconds on one CPU thread."""
    base = ["model.vocab_size=64", "model.block_size=16", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
            "train.batch_size=4", "train.max_steps=12", "train.warmup_steps=2", "train.eval_every=4",
            "train.eval_batches=2", "train.log_every=1", "train.progress=false", "train.device=cpu",
            "train.max_lr=1e-2", "train.min_lr=1e-3", "train.max_minutes=0"]
    return resolve_run_config("tiny-cpu", base + list(overrides))
