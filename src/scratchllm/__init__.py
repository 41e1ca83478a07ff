"""scratchllm: build a GPT-style language model from scratch.

    run = scratchllm.load("runs/speedrun")     # .model, .tokenizer, .config

>>> import tempfile, scratchllm
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.train.checkpoint import save_run_weights
>>> run_dir = tempfile.mkdtemp()
>>> _ = save_run_weights(run_dir, Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16)))
>>> run = scratchllm.load(run_dir)
>>> run.model.config.n_layer, run.tokenizer, run.config.model.vocab_size
(1, None, 64)
"""

from scratchllm.version import __version__

__all__ = ["__version__", "load"]


def load(run_dir, step: int | None = None, device: str = "cpu"):
    """Load a trained run directory: returns an object with `.model`, `.tokenizer` and `.config`."""
    # CLI speed: every `scratchllm` command (`--help` too) imports this package first; torch and
    # the run loaders load only when a run is.
    from scratchllm.train.checkpoint import load_run

    return load_run(run_dir, step=step, device=device)
