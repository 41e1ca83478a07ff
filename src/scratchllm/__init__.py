"""scratchllm: build a GPT-style language model from scratch.

>>> import scratchllm
>>> run = scratchllm.load("runs/speedrun")          # doctest: +SKIP
>>> run.model, run.tokenizer, run.config            # doctest: +SKIP
"""

from scratchllm.version import __version__

__all__ = ["__version__", "load"]


def load(run_dir, step: int | None = None, device: str = "cpu"):
    """Load a trained run directory: returns an object with `.model`, `.tokenizer` and `.config`."""
    # CLI speed: every `scratchllm` command (`--help` too) imports this package first; torch and
    # the run loaders load only when a run is.
    from scratchllm.train.checkpoint import load_run

    return load_run(run_dir, step=step, device=device)
