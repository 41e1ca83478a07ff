"""Tiny random-init Hugging Face models, built locally with `transformers` (no downloads)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

VOCAB = 320
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5)

# name -> (config class, kwargs). Each case exercises one thing our import must get right.
HF_CASES = {
    "gpt2": ("GPT2Config", dict(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0,
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)),
    "gpt2-untied": ("GPT2Config", dict(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                       n_inner=80, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)),
    "llama-gqa": ("LlamaConfig", dict(COMMON, num_key_value_heads=2, rope_theta=500000.0,
                                      tie_word_embeddings=False)),
    "llama3-scaled": ("LlamaConfig", dict(COMMON, num_key_value_heads=1, rope_theta=10000.0,
                                          rope_scaling={"rope_type": "llama3", "factor": 4.0,
                                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                        "original_max_position_embeddings": 32})),
    "llama-linear": ("LlamaConfig", dict(COMMON, rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "qwen2": ("Qwen2Config", dict(COMMON, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6)),
    "mistral": ("MistralConfig", dict(COMMON, num_key_value_heads=2, sliding_window=48)),
    "qwen3": ("Qwen3Config", dict(COMMON, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True)),
}
ARCH = {"GPT2Config": "GPT2LMHeadModel", "LlamaConfig": "LlamaForCausalLM",
        "Qwen2Config": "Qwen2ForCausalLM", "MistralConfig": "MistralForCausalLM", "Qwen3Config": "Qwen3ForCausalLM"}


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random (HF zero-initialises biases and sets norms to one, which hides bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm = p.ndim == 1 and ("norm" in name or ".ln_" in name)
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)


def make_hf_model(case: str, seed: int = 0):
    """A fresh random HF causal LM (eval mode, fp32) for one of HF_CASES."""
    config_cls, kwargs = HF_CASES[case]
    config = getattr(transformers, config_cls)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, ARCH[config_cls])(config).eval()
    randomize(model, seed)
    return model


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory):
    """case -> (directory saved with save_pretrained, the HF model). Built once per session."""
    out = {}
    for case in HF_CASES:
        model = make_hf_model(case)
        path = tmp_path_factory.mktemp(case)
        model.save_pretrained(path)
        out[case] = (path, model)
    return out


@pytest.fixture
def cli_main(monkeypatch):
    """`scratchllm.cli.main` with only our stage registered (independent of the others' modules)."""
    from scratchllm import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["scratchllm.interop.cli"])
    return cli.main
