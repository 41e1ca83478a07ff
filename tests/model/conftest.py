"""Tiny configs shared by the model tests (as fixtures returning factories): GPT-2 and Llama style."""

import pytest
import torch

from scratchllm.model.config import ModelConfig


def gpt2_config(**kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=61, block_size=24)
    return ModelConfig(**{**base, **kw})


def llama_config(**kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=4, n_kv_head=2, n_embd=32, vocab_size=61, block_size=24,
                norm="rmsnorm", position="rope", mlp="swiglu", bias=False, tie_embeddings=False,
                mlp_multiple_of=16)
    return ModelConfig(**{**base, **kw})


@pytest.fixture(name="gpt2_config")
def _gpt2_config():
    return gpt2_config


@pytest.fixture(name="llama_config")
def _llama_config():
    return llama_config


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
