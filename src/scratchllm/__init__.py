"""scratchllm: build a GPT-style language model from scratch.

>>> import scratchllm
>>> run = scratchllm.load("runs/speedrun")          # doctest: +SKIP
>>> run.model, run.tokenizer, run.config            # doctest: +SKIP
"""

__version__ = "0.1.0"


def load(run_dir, step: int | None = None, device: str = "cpu"):
    """Load a trained run directory: returns an object with `.model`, `.tokenizer` and `.config`."""
    from scratchllm.train.checkpoint import load_run

    return load_run(run_dir, step=step, device=device)
