"""Shared bits of the interop tests: tiny random HF models (built locally with `transformers`, no
downloads), random batches, greedy decoding both ways, a tiny tokenizer.

(A module with its own name, not conftest: several test directories have a conftest.py, and
`from conftest import ...` would pick whichever was imported first.)"""

from __future__ import annotations

import torch
from hf_random import randomize

VOCAB = 320
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5)

# name -> (config class, kwargs). Each case exercises one thing our import must get right.
HF_CASES = {
    "gpt2": ("GPT2Config", dict(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                bos_token_id=0, eos_token_id=0)),
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


def make_hf_model(case: str, seed: int = 0):
    """A fresh random HF causal LM (eval mode, fp32) for one of HF_CASES."""
    import transformers

    config_cls, kwargs = HF_CASES[case]
    config = getattr(transformers, config_cls)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, ARCH[config_cls])(config).eval()
    randomize(model, seed)
    return model


MIXED_TEXT = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "  leading spaces,\ttabs\tand\n\nnewlines \r\n done",
    "numbers 1234567 3.14159 -42 1e10, dates 2024-01-02",
    "café naïve résumé Ünïcödé — “quotes” ‘single’ … ½",
    "日本語のテキスト 中文 한국어 Ελληνικά русский עברית العربية",
    "emoji 🙂🚀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "code: def f(x): return x**2  # comment\n    if a != b: pass",
    "it's they're we've I'm you'll he'd DON'T",
    "<|endoftext|> a special token in the middle <|endoftext|>",
]


def random_batch(vocab: int, batch: int = 3, length: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def greedy_ours(model, prompt: torch.Tensor, n: int) -> torch.Tensor:
    """n greedy tokens per row from our inference engine (prefill, then KV-cached steps)."""
    from scratchllm.inference.engine import generate

    return torch.tensor([list(generate(model, row.tolist(), max_new_tokens=n, temperature=0)) for row in prompt])


@torch.no_grad()
def greedy_hf(model, prompt: torch.Tensor, n: int) -> torch.Tensor:
    """n greedy tokens from `transformers`' generate (no early stop at an eos token)."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                         do_sample=False)
    return out[:, prompt.shape[1]:]


def tiny_tokenizer(vocab_size: int = 300):
    """A byte-level BPE trained in milliseconds on the mixed text (GPT-4 split pattern)."""
    from scratchllm.tokenizer.bpe import Tokenizer

    return Tokenizer.train(MIXED_TEXT * 4, vocab_size=vocab_size, pattern="gpt4",
                           special_tokens=["<|endoftext|>"])
