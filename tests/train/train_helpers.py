"""Plain helpers for the training tests (a uniquely named module: `from conftest import` would pick
whichever test folder's conftest was imported first)."""

from scratchllm.train.config import resolve_run_config


def tiny_config(*overrides: str):
    """A model and loop small enough that a step takes milliseconds on one CPU thread."""
    base = ["model.vocab_size=64", "model.block_size=16", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
            "train.batch_size=4", "train.max_steps=12", "train.warmup_steps=2", "train.eval_every=4",
            "train.eval_batches=2", "train.log_every=1", "train.progress=false", "train.device=cpu",
            "train.max_lr=1e-2", "train.min_lr=1e-3", "train.max_minutes=0"]
    return resolve_run_config("tiny-cpu", base + list(overrides))
