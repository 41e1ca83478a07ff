"""Shared bits of the fine-tuning tests: a byte-level tokenizer with chat tokens, a tiny model,
a tiny base run on disk, conversation files. (A uniquely named module, not conftest.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
from scratchllm.train.checkpoint import save_run_weights


# ../shared/data relative to the repository root (SCRATCHLLM_DATA overrides, as in tests/tokenizer).
DATA = Path(os.environ.get("SCRATCHLLM_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def byte_tokenizer(specials=DEFAULT_SPECIAL_TOKENS) -> Tokenizer:
    return Tokenizer({bytes([i]): i for i in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})


def tiny_config(**kw) -> ModelConfig:
    base = dict(vocab_size=320, block_size=64, n_layer=2, n_head=2, n_embd=32, bias=False)
    base.update(kw)
    return ModelConfig(**base)


def llama_config(**kw) -> ModelConfig:
    llama = dict(norm="rmsnorm", position="rope", mlp="swiglu", n_kv_head=1, tie_embeddings=False, mlp_hidden=48)
    return tiny_config(**{**llama, **kw})


def tiny_model(cfg: ModelConfig | None = None, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(cfg or tiny_config()).eval()


def make_base_run(path, cfg: ModelConfig | None = None, tokenizer=None, seed: int = 0):
    save_run_weights(path, tiny_model(cfg, seed), tokenizer or byte_tokenizer())
    return path


def alpaca_records(n: int = 40):
    return [{"instruction": f"Say the number {i}.", "input": "" if i % 2 else "twice",
             "output": f"{i} " * (1 + i % 3)} for i in range(n)]


def write_json(path, records, jsonl: bool = False):
    text = "\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records)
    path.write_text(text)
    return path
