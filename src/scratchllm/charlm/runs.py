"""Train, save, load and sample the small first models (bigram, neural bigram, MLP) as run directories.

    runs/NAME/
      config.toml          [charlm] (kind, data, mode, seed) + the model's table ([bigram], [bigram_nn], [mlp])
      tokenizer.json       the CharTokenizer
      metrics.jsonl        progress lines; the last has train_loss, val_loss (and test_loss, nll_full)
      checkpoints/step-N/  model.safetensors (verified, like every scratchllm checkpoint)
      samples.txt, *.png   what the model writes, its figures

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> final = train_run(CharLMConfig(kind="bigram", plots=False), [], out, progress=False)
>>> sorted(final)
['nll_full', 'test_loss', 'train_loss', 'val_loss']
>>> len(sample_run(out, n=3, seed=0))
3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from scratchllm.charlm import plots
from scratchllm.charlm.bigram import (BigramConfig, CountingBigram, NeuralBigram, NeuralBigramConfig,
                                      neural_nll, train_neural_bigram)
from scratchllm.charlm.data import Corpus, examples, load_corpus, pad_id
from scratchllm.charlm.mlp import MLP, MLPConfig, evaluate, sample, train_mlp
from scratchllm.tokenizer.char import CharTokenizer
from scratchllm.config import apply_overrides, dumps_toml, from_dict
from scratchllm.errors import UserError
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.tracking import MetricsLog
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.files import read_toml

Kind = Literal["bigram", "bigram-nn", "mlp", "transformer"]


@dataclass
class CharLMConfig:
    kind: Kind = "mlp"
    data: str = ""                                      # "" = the built-in Unicode words (offline)
    mode: Literal["auto", "lines", "stream"] = "auto"   # one item per line, or one long text
    seed: int = 42                                      # the split's shuffle and the training randomness
    plots: bool = True                                  # write the PNG figures (heatmap, embeddings)


@dataclass
class BigramRun:
    charlm: CharLMConfig = field(default_factory=CharLMConfig)
    bigram: BigramConfig = field(default_factory=BigramConfig)


@dataclass
class NeuralBigramRun:
    charlm: CharLMConfig = field(default_factory=CharLMConfig)
    bigram_nn: NeuralBigramConfig = field(default_factory=NeuralBigramConfig)


@dataclass
class MLPRun:
    charlm: CharLMConfig = field(default_factory=CharLMConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)


RUN_TYPES = {"bigram": (BigramRun, "bigram"), "bigram-nn": (NeuralBigramRun, "bigram_nn"), "mlp": (MLPRun, "mlp")}


def resolve(charlm: CharLMConfig, overrides: list[str]):
    """The run config of `charlm.kind` with `key=value` overrides; a bare key means the model's table."""
    cls, table = RUN_TYPES[charlm.kind]
    names = {"charlm", table}
    full = [o if o.split("=", 1)[0].split(".")[0] in names else f"{table}.{o}" for o in overrides]
    return apply_overrides(cls(charlm=charlm), full)


def _xy(corpus: Corpus, split: str, context: int):
    return examples(corpus, corpus.splits[split], context)


def _context(run) -> int:
    """Characters the model reads: the MLP's context, one for the bigrams."""
    return run.mlp.context if run.charlm.kind == "mlp" else 1


def _fit_bigram(run: BigramRun, corpus: Corpus, out: Path, progress: bool):
    V = corpus.tokenizer.vocab_size
    xt, yt = _xy(corpus, "train", 1)
    model = CountingBigram.fit(xt[:, 0], yt, V, run.bigram.smoothing)
    xa, ya = examples(corpus, corpus.items, 1)
    # The makemore figure: counts from the whole file, scored on the whole file.
    full = CountingBigram.fit(xa[:, 0], ya, V, run.bigram.smoothing)
    if run.charlm.plots:
        plots.bigram_heatmap(full.counts, corpus.tokenizer.itos, out / "bigram.png")
    score = lambda xy: model.nll(xy[0][:, 0], xy[1])  # noqa: E731
    return model, 0, score, {"nll_full": full.nll(xa[:, 0], ya)}


def _fit_neural_bigram(run: NeuralBigramRun, corpus: Corpus, out: Path, progress: bool):
    xt, yt = _xy(corpus, "train", 1)
    model, losses = train_neural_bigram(xt[:, 0], yt, corpus.tokenizer.vocab_size, run.bigram_nn, progress)
    log = MetricsLog(out / "metrics.jsonl")
    for step in range(0, len(losses), max(1, len(losses) // 20)):
        log.write({"step": step, "loss": losses[step]})
    score = lambda xy: neural_nll(model, xy[0][:, 0], xy[1])  # noqa: E731
    return model, run.bigram_nn.steps, score, {}


def _fit_mlp(run: MLPRun, corpus: Corpus, out: Path, progress: bool):
    cfg = run.mlp
    model = MLP(cfg, corpus.tokenizer.vocab_size)
    log = MetricsLog(out / "metrics.jsonl")
    train_mlp(model, _xy(corpus, "train", cfg.context), _xy(corpus, "val", cfg.context),
              seed=run.charlm.seed, log=log.write, progress=progress)
    if run.charlm.plots:
        plots.embedding_scatter(model.emb.weight, corpus.tokenizer.itos, out / "embeddings.png")
    score = lambda xy: evaluate(model, *xy)  # noqa: E731
    return model, cfg.steps, score, {}


FIT = {"bigram": _fit_bigram, "bigram-nn": _fit_neural_bigram, "mlp": _fit_mlp}


def train_run(charlm: CharLMConfig, overrides: list[str], out_dir: str | Path, progress: bool = True,
              verbose: bool = False) -> dict:
    """Train one small model on `charlm.data` into `out_dir`; returns the final metrics line.

    `verbose`: print the resolved config (it is saved to config.toml either way)."""
    run = resolve(charlm, overrides)
    corpus = load_corpus(charlm.data or None, charlm.mode, seed=charlm.seed)
    out = Path(out_dir)
    if ckpt.list_steps(out):
        raise UserError(f"'{out}' already holds a run; choose another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)  # left by an attempt that never finished
    text = dumps_toml(run)
    if progress:
        print(f"# {corpus.name}: {corpus.mode} mode, {len(corpus.items):,} items, vocab {corpus.tokenizer.vocab_size}")
    if verbose:
        print(f"# resolved config (saved to {out / 'config.toml'})\n{text}")
    torch.manual_seed(charlm.seed)
    model, step, score, extra = FIT[charlm.kind](run, corpus, out, progress)
    context = _context(run)
    final = {f"{split}_loss": score(_xy(corpus, split, context)) for split in corpus.splits}
    final = {"step": step, **final, **extra}
    atomic_write_text(out / "config.toml", text)
    corpus.tokenizer.save(out / "tokenizer.json")
    ckpt.save_checkpoint(out, step, model)
    MetricsLog(out / "metrics.jsonl").write(final)
    atomic_write_text(out / "samples.txt", "\n".join(_draw(model, corpus.tokenizer, context, 20, 0)) + "\n")
    return {k: v for k, v in final.items() if k != "step"}


def read_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.toml"
    if not path.is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.toml); pass the --out of `scratchllm charlm train`")
    data = read_toml(path, "run config", bad="fix or re-create the run")
    if "charlm" not in data:
        raise UserError(f"'{run_dir}' is not a charlm run (no [charlm] table in config.toml); "
                        "sample other runs with `scratchllm generate`")
    return data


def load_small_run(run_dir: str | Path):
    """(model in eval mode, tokenizer, resolved run config) of a bigram / bigram-nn / mlp run."""
    data = read_run_config(run_dir)
    kind = data["charlm"].get("kind")
    cls, table = RUN_TYPES[kind]
    run = from_dict(cls, data)
    tok = CharTokenizer.load(Path(run_dir) / "tokenizer.json")
    V = tok.vocab_size
    model = {"bigram": lambda: CountingBigram(torch.zeros(V, V, dtype=torch.long), run.bigram.smoothing),
             "bigram-nn": lambda: NeuralBigram(V), "mlp": lambda: MLP(run.mlp, V)}[kind]()
    ckpt.load_weights(model, ckpt.find_checkpoint(run_dir))
    return model.eval(), tok, run


def _draw(model, tok: CharTokenizer, context: int, n: int, seed: int, length: int = 200) -> list[str]:
    gen = torch.Generator().manual_seed(seed)
    # Items end at the boundary token; a stream has none, so it runs for `length` characters.
    max_len = 100 if tok.eot_id is not None else length
    ids = sample(model, context, pad_id(tok), tok.eot_id, n, max_len, gen)
    return [tok.decode(s) for s in ids]


def sample_run(run_dir: str | Path, n: int = 20, seed: int = 0, length: int = 200) -> list[str]:
    """`n` samples from a small-model run (items, or `length`-character passages for a stream)."""
    model, tok, run = load_small_run(run_dir)
    return _draw(model, tok, _context(run), n, seed, length)
