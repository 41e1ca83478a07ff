"""The character-level transformer: the main `Transformer`, trainer and sampler with a character vocabulary.

Nothing here is a second model or a second loop. The corpus is encoded with a
`CharTokenizer` and written as ordinary token shards (`OUT/tokens/`), read by the main
`TokenLoader`, trained by `scratchllm.train.loop.train`, sampled by
`scratchllm.inference.engine.generate`, and the run directory loads with `scratchllm.load`.
The defaults are a small model sized for a CPU (see bench/charlm_transformer.py);
`bench/charlm_transformer.py --gpu` holds nanoGPT's shakespeare-char shape.

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> final = train_transformer(CharLMConfig(kind="transformer"), ["model.n_layer=1", "model.n_embd=32",
...     "model.block_size=16", "train.max_steps=3", "train.progress=false"], out, quiet=True)
>>> sorted(final)
['train_loss', 'val_bpb', 'val_loss']
>>> len(sample_transformer(out, n=2, seed=0))
2
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scratchllm.charlm.data import Corpus, load_corpus, pad_id
from scratchllm.charlm.runs import CharLMConfig
from scratchllm.config import apply_overrides
from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.data.shards import dtype_for_vocab, read_shard, write_shard
from scratchllm.errors import UserError
from scratchllm.inference.engine import generate
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import list_steps, load_run
from scratchllm.train.loop import train
from scratchllm.train.step import evaluate, next_token_loss
from scratchllm.train.config import TrainConfig
from scratchllm.train.tracking import MetricsLog
from scratchllm.utils.atomic import atomic_write_text


# The CPU defaults, by measurement on tiny Shakespeare (bench/RESULTS.md, "First models"): at a
# budget of ~4M tokens a 3-layer, 96-wide model with a short 64-character context and a high
# learning rate beats a 4-layer, 128-wide one given the same CPU time (1.63 vs 1.74 val).
def cpu_model() -> ModelConfig:
    # vocab_size is set from the data's tokenizer at train time.
    return ModelConfig(vocab_size=65, block_size=64, n_layer=3, n_head=4, n_embd=96, dropout=0.0, bias=False)


def cpu_train() -> TrainConfig:
    return TrainConfig(batch_size=32, max_steps=1800, max_lr=4e-3, min_lr=4e-4, warmup_steps=100, beta2=0.99,
                       weight_decay=0.1, eval_every=300, eval_batches=8, log_every=25, checkpoint_every=0,
                       keep_checkpoints=1)


@dataclass
class TransformerRun:
    """`config.toml` of a char transformer run: [charlm] + the main [model] and [train] tables."""

    charlm: CharLMConfig = field(default_factory=lambda: CharLMConfig(kind="transformer"))
    model: ModelConfig = field(default_factory=cpu_model)
    train: TrainConfig = field(default_factory=cpu_train)


def _stream(corpus: Corpus, split: str) -> np.ndarray:
    """A split as one id stream: items each preceded by the boundary (line mode), or the text itself."""
    tok = corpus.tokenizer
    if corpus.mode == "stream":
        ids = tok.encode(corpus.splits[split][0])
    else:
        ids = [i for item in corpus.splits[split] for i in [tok.eot_id, *tok.encode(item)]] + [tok.eot_id]
    return np.asarray(ids, dtype=dtype_for_vocab(tok.vocab_size))


def write_tokens(corpus: Corpus, directory: Path) -> float:
    """Write train/val shards for the main loader; returns val tokens per UTF-8 byte (for bits per byte)."""
    streams = {split: _stream(corpus, split) for split in ("train", "val")}
    for split, ids in streams.items():
        write_shard(directory / f"{split}-00000.bin", ids)
    val_text = "\n".join(corpus.splits["val"])
    return len(streams["val"]) / max(1, len(val_text.encode("utf-8")))


def full_split_batches(directory: Path, split: str, block_size: int, batch_size: int):
    """Every token of a split, once: consecutive non-overlapping windows (the last one partial is dropped)."""
    ids = torch.from_numpy(np.asarray(read_shard(directory / f"{split}-00000.bin"), dtype=np.int64))
    n = (len(ids) - 1) // block_size
    x = ids[: n * block_size].view(n, block_size)
    y = ids[1: n * block_size + 1].view(n, block_size)
    return list(zip(x.split(batch_size), y.split(batch_size)))


def train_transformer(charlm: CharLMConfig, overrides: list[str], out_dir: str | Path, quiet: bool = False,
                      verbose: bool = False) -> dict:
    """Train the main Transformer on `charlm.data` through the main loop; returns the final figures.

    `verbose`: print the resolved config (it is saved to config.toml either way)."""
    corpus = load_corpus(charlm.data or None, charlm.mode, seed=charlm.seed)
    cfg = apply_overrides(TransformerRun(charlm=charlm), overrides)
    cfg.model = dataclasses.replace(cfg.model, vocab_size=corpus.tokenizer.vocab_size)
    out = Path(out_dir)
    if list_steps(out):   # refuse before writing anything over the old run's tokens and tokenizer
        raise UserError(f"'{out}' already holds a training run; choose another --out or delete it")
    tokens = out / "tokens"
    tpb = write_tokens(corpus, tokens)
    corpus.tokenizer.save(out / "tokenizer.json")
    T, B = cfg.model.block_size, cfg.train.batch_size
    batches = TokenLoader(tokens, "train", T, B, seed=cfg.train.seed)
    val = window_batches(val_windows(tokens, T, cfg.train.eval_batches * B), B)
    if not quiet:
        print(f"# {corpus.name}: {corpus.mode} mode, vocab {corpus.tokenizer.vocab_size}")
    model = Transformer(cfg.model)
    result = train(model, cfg, batches, out, val_batches=val, tokens_per_byte=tpb, quiet=quiet or not verbose)
    # The loop's val figure is a fixed sample; the final one scores every val token (and as many train ones).
    device = next(model.parameters()).device
    score = lambda b: evaluate(model, b, next_token_loss, device, cfg.train.dtype)["loss"]  # noqa: E731
    val_all = full_split_batches(tokens, "val", T, B)
    n_windows = sum(len(x) for x, _ in val_all)
    train_some = window_batches(val_windows(tokens, T, n_windows, split="train"), B)
    final = {"train_loss": score(train_some), "val_loss": score(val_all)}
    final["val_bpb"] = final["val_loss"] / math.log(2) * tpb
    MetricsLog(out / "metrics.jsonl").write({"step": result.step, **final})
    atomic_write_text(out / "samples.txt", "\n".join(_draw(model.eval(), corpus.tokenizer, 20, 0)) + "\n")
    return final


def _passage(model, tok, seed: int, length: int) -> list[int]:
    """`length` ids of a stream, past the context: each round re-reads the last half block and goes on."""
    ids, half, round_ = [pad_id(tok)], model.config.block_size // 2, 0
    while len(ids) - 1 < length:
        budget = min(half, length - (len(ids) - 1))
        ids += generate(model, ids[-half:], budget, seed=seed * 1000 + round_, vocab_size=tok.vocab_size)
        round_ += 1
    return ids[1:]


def _draw(model, tok, n: int, seed: int, length: int = 200) -> list[str]:
    if tok.eot_id is None:
        return [tok.decode(_passage(model, tok, seed + i, length)) for i in range(n)]
    budget = min(100, model.config.block_size - 1)   # an item ends at the boundary token
    return [tok.decode(list(generate(model, [tok.eot_id], budget, stop_ids=[tok.eot_id], seed=seed + i,
                                     vocab_size=tok.vocab_size))) for i in range(n)]


def sample_transformer(run_dir: str | Path, n: int = 20, seed: int = 0, length: int = 200) -> list[str]:
    """`n` samples (items, or passages up to `length` characters) from a char transformer run."""
    run = load_run(run_dir)
    return _draw(run.model, run.tokenizer, n, seed, length)
