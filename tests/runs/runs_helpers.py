"""A tiny run for the runs tests, importable and runnable as a script (the fault-injection child).

    python runs_helpers.py TOKEN_DIR OUT_DIR [KEY=VALUE ...]    # resumes OUT_DIR if it has a checkpoint
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.data.shards import ShardWriter
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train

VOCAB = 64


def make_tokens(d: Path) -> Path:
    """Train/val shards with learnable structure (each token mostly follows the last + 1)."""
    rng = np.random.default_rng(0)
    for split, n_docs in (("train", 40), ("val", 6)):
        with ShardWriter(d, split, vocab_size=VOCAB, separator=0) as w:
            for _ in range(n_docs):
                start = rng.integers(1, VOCAB)
                steps = np.where(rng.random(80) < 0.8, 1, rng.integers(1, VOCAB, size=80))
                w.add_document((start + np.cumsum(steps)) % (VOCAB - 1) + 1)
    # a stand-in manifest (write_token_dir's meta.json needs a tokenizer): what run_info.json hashes
    (d / "meta.json").write_text(json.dumps({"vocab_size": VOCAB}))
    return d


def tiny_config(*overrides: str):
    base = ["model.vocab_size=64", "model.block_size=16", "model.n_layer=1", "model.n_head=2", "model.n_embd=16",
            "train.batch_size=4", "train.max_steps=12", "train.warmup_steps=2", "train.eval_every=4",
            "train.eval_batches=2", "train.log_every=1", "train.progress=false", "train.device=cpu",
            "train.max_lr=1e-2", "train.min_lr=1e-3", "train.max_minutes=0"]
    return resolve_run_config("tiny-cpu", base + list(overrides))


def run_tiny(token_dir: Path, out: Path, *overrides: str, resume: bool | None = None, make_optimizer=None, **kwargs):
    """A tiny run through `train`; `make_optimizer(model, train_config)` replaces the loop's optimizer."""
    cfg = tiny_config(*overrides)
    tc = cfg.train
    ckpt.seed_everything(tc.seed)
    model = Transformer(cfg.model)
    if make_optimizer is not None:
        kwargs["optimizer"] = make_optimizer(model, tc)
    loader = TokenLoader(token_dir, "train", cfg.model.block_size, tc.batch_size, seed=tc.seed)
    val = window_batches(val_windows(token_dir, cfg.model.block_size, tc.eval_batches * tc.batch_size), tc.batch_size)
    if resume is None:
        resume = bool(ckpt.list_steps(out))
    return train(model, cfg, loader, out, val_batches=val, resume=resume, quiet=True,
                 manifest=Path(token_dir) / "meta.json", **kwargs)


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = run_tiny(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])
    print(f"finished step {result.step} interrupted={result.interrupted}", flush=True)
