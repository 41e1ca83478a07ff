"""Shared bits of the hardening tests (bad input, bad disks, bad resumes): a tiny corpus, the
overrides of a run that trains in about a second, and a snapshot of a directory tree.

(A module with its own name, not conftest: several test directories have a conftest.py.)"""

from __future__ import annotations

import os
from pathlib import Path

# A run small enough to train, save and resume in about a second on one CPU thread.
TINY = ["model.block_size=16", "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "train.batch_size=2",
        "train.max_steps=3", "train.eval_every=0", "train.eval_batches=1", "train.log_every=1",
        "train.warmup_steps=0", "train.progress=false", "train.device=cpu", "train.checkpoint_every=0",
        "data.vocab_size=270", "data.workers=1", "data.val_fraction=0.3"]


def corpus(root: Path) -> Path:
    """A directory of 4 small English-and-code .txt documents (from this Python's stdlib, offline)."""
    d = root / "corpus"
    d.mkdir(exist_ok=True)
    source = Path(os.__file__).read_text(encoding="utf-8")
    for i in range(4):
        (d / f"doc{i}.txt").write_text(source[i * 3000:(i + 1) * 3000], encoding="utf-8")
    return d


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` -> its bytes (None for directories): equal trees = nothing changed."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}
