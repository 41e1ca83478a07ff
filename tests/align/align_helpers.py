"""Shared bits of the alignment tests: a byte tokenizer with chat tokens, tiny runs on disk, and a
synthetic preference whose rule is learnable. (A uniquely named module, not conftest.)"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
from scratchllm.train.checkpoint import save_run_weights

# ../shared/data relative to the repository root (SCRATCHLLM_DATA overrides, as in tests/tokenizer).
DATA = Path(os.environ.get("SCRATCHLLM_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
PREFERENCE = DATA / "preference"


def byte_tokenizer() -> Tokenizer:
    return Tokenizer({bytes([i]): i for i in range(256)}, "gpt4",
                     {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})


def tiny_config(**kw) -> ModelConfig:
    base = dict(vocab_size=320, block_size=48, n_layer=2, n_head=2, n_embd=32, bias=False)
    return ModelConfig(**{**base, **kw})


def tiny_model(cfg: ModelConfig | None = None, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(cfg or tiny_config()).eval()


def make_run(path, cfg: ModelConfig | None = None, seed: int = 0) -> Path:
    save_run_weights(path, tiny_model(cfg, seed), byte_tokenizer())
    return Path(path)


def rule_pairs(n: int, seed: int = 0) -> list[dict]:
    """Prompts of 3 random letters; the preferred reply repeats them with "!", the other with "?".

    Learnable from any prompt (the rule is the last character), and held-out prompts are new strings.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))
        out.append({"prompt": word, "chosen": f"{word}!", "rejected": f"{word}?"})
    return out


def write_jsonl(path, records) -> Path:
    Path(path).write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return Path(path)
