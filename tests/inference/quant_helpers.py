"""A tiny trained run for the quantization and GGUF tests: byte tokenizer, a few seconds of Adam on repetitive text."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

TEXT = ("the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
        "all that glitters is not gold. where there is smoke there is fire. ") * 40


def byte_tokenizer() -> Tokenizer:
    return Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})


def train_tiny(cfg: ModelConfig, steps: int = 120, seed: int = 0, tokenizer: Tokenizer | None = None) -> Transformer:
    """A model that has learned TEXT (in `tokenizer`'s ids, default bytes) well enough that quantization error shows."""
    torch.manual_seed(seed)
    model = Transformer(cfg)
    ids = torch.tensor((tokenizer or byte_tokenizer()).encode_ordinary(TEXT))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    T = min(cfg.block_size, 64)   # short windows: a 1024-position model need not train on 1024-token rows
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - T - 1, (8,))
        x = torch.stack([ids[s:s + T] for s in starts])
        y = torch.stack([ids[s + 1:s + T + 1] for s in starts])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def save_tiny_run(path, cfg: ModelConfig, steps: int = 120) -> Transformer:
    model = train_tiny(cfg, steps)
    save_run_weights(path, model, byte_tokenizer())
    return model
