"""Shared bits of the interop tests: random batches, greedy decoding both ways, a tiny tokenizer."""

from __future__ import annotations

import torch

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
