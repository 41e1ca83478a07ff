"""Shared bits of the viz tests: tiny runs written straight from a random model (no training),
with a byte-level tokenizer, and a check that a picture is not blank.

(A module with its own name, not conftest: several test directories have a conftest.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

TINY = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=260, block_size=32)


def byte_tokenizer() -> Tokenizer:
    """Every byte a token, plus four merges so that tokens of several bytes appear too."""
    ranks = {bytes([i]): i for i in range(256)}
    for j, pair in enumerate([b"he", b"ll", b"o ", b"th"]):
        ranks[pair] = 256 + j
    return Tokenizer(ranks, "gpt2")


def tiny_run(root: Path, name: str = "run", tokenizer: bool = True, seed: int = 0, **cfg) -> Path:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**(TINY | cfg)))
    save_run_weights(root / name, model, byte_tokenizer() if tokenizer else None)
    return root / name


def pixel_std(png: bytes) -> float:
    """Standard deviation of the image's grey levels: 0 for a blank picture."""
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64).std())
