"""The char transformer is the main Transformer trained by the main loop: a few steps, loss falls, it loads back."""

import json

import pytest

import scratchllm
from scratchllm.charlm.runs import CharLMConfig
from scratchllm.charlm.transformer import sample_transformer, train_transformer
from scratchllm.tokenizer.char import CharTokenizer
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=16", "train.batch_size=16",
        "train.max_steps=30", "train.max_lr=1e-2", "train.warmup_steps=5", "train.eval_every=10",
        "train.log_every=10", "train.progress=false", "train.device=cpu"]


def test_transformer_wiring(prose_file, tmp_path):
    out = tmp_path / "run"
    final = train_transformer(CharLMConfig(kind="transformer", data=str(prose_file)), TINY, out, quiet=True)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r["val_loss"] for r in lines if "loss" in r and "val_loss" in r]
    assert evals[-1] < evals[0] - 0.3                      # the main loop's own validations fall
    assert {"train_loss", "val_loss"} <= set(lines[-1]) and final["val_loss"] == lines[-1]["val_loss"]

    run = scratchllm.load(out)                             # an ordinary run directory
    assert isinstance(run.model, Transformer) and isinstance(run.tokenizer, CharTokenizer)
    assert run.config.model.vocab_size == run.tokenizer.vocab_size
    # Passages run past the 16-character context (the sampler is re-prompted with the last half block).
    a, b = sample_transformer(out, n=3, seed=7, length=40), sample_transformer(out, n=3, seed=7, length=40)
    assert a == b and all(len(s) == 40 for s in a)
    assert sample_transformer(out, n=3, seed=8, length=40) != a

    before = (out / "tokenizer.json").read_bytes()
    with pytest.raises(UserError, match="already holds"):
        train_transformer(CharLMConfig(kind="transformer"), TINY, out, quiet=True)
    assert (out / "tokenizer.json").read_bytes() == before
