"""Pretraining, start to finish: data (raw text or a token directory) -> tokens -> trained run.

This is what `scratchllm train` runs and the middle of `scratchllm speedrun`:

1. data: a token directory (has meta.json) is used as is. Raw text (`data.path`: "" for the
   built-in corpus, a .txt, a directory, a .jsonl) gets a BPE tokenizer trained on its train
   documents (`data.vocab_size` ids, special tokens included) and is tokenized into `OUT/tokens/`.
2. model: a `Transformer(cfg.model)` with `model.vocab_size` set to the tokenizer's size
   rounded up to a multiple of 64 (matmuls on such shapes run faster; the extra rows are never
   targets, so they only learn to be unlikely).
3. the loop (`scratchllm.train.loop.train`) on random windows of the train split, validated on
   fixed windows of the val split; val bits-per-byte from the split's tokens/bytes ratio.

    pretrain(resolve_run_config("tiny-cpu"), "runs/tiny")    # the built-in corpus, minutes on a CPU

A two-step run on 100 tiny documents:

>>> import json, pathlib, tempfile
>>> from scratchllm.train.config import resolve_run_config
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "docs.jsonl").write_text("".join(json.dumps({"text": f"document {i}: the cat sat on the mat."}) + "\\n"
...                                           for i in range(100)))
>>> cfg = resolve_run_config("tiny-cpu", [f"data.path={d / 'docs.jsonl'}", "data.vocab_size=300",
...     "data.val_fraction=0.2", "data.workers=1", "model.block_size=8", "model.n_layer=1", "model.n_head=2",
...     "model.n_embd=16", "train.batch_size=2", "train.max_steps=2", "train.eval_every=2", "train.eval_batches=1",
...     "train.progress=false", "train.device=cpu", "train.max_minutes=0"])
>>> result, model, token_dir, cfg = pretrain(cfg, d / "run", progress=False, quiet=True)
>>> result.step, sorted(p.name for p in (d / "run").iterdir())
(2, ['checkpoints', 'config.toml', 'metrics.jsonl', 'run_info.json', 'tokenizer.json', 'tokens'])
"""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import nullcontext
from pathlib import Path

from scratchllm.data.builtin import read_corpus
from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.data.tokenize import is_val, read_meta, tokens_per_byte, write_token_dir
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer import Tokenizer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import distributed
from scratchllm.train.config import RunConfig, check_resume_config, load_run_config
from scratchllm.train.loop import check_out_dir, train
from scratchllm.utils.atomic import atomic_write_bytes
from scratchllm.utils.device import resolve_device
from scratchllm.utils.outdir import check_output_dir, removed_on_failure

VOCAB_MULTIPLE = 64


def _train_texts(data):
    """The train documents' text, up to `data.tokenizer_bytes`: what the tokenizer learns from."""
    total = 0
    for index, text in enumerate(read_corpus(data.path, data.max_bytes, data.encoding)):
        if total >= data.tokenizer_bytes:
            return
        if not is_val(index, data.seed, data.val_fraction):
            total += len(text.encode("utf-8"))
            yield text


def _same_data(out_dir: Path, data) -> bool:
    """Whether `out_dir/config.toml` was written for the same [data] settings (so OUT/tokens can be reused)."""
    try:
        return load_run_config(out_dir).data == data
    except UserError:
        return False


def prepare_data(cfg: RunConfig, out_dir: Path, progress: bool = True) -> Path:
    """The token directory for this run: `data.path` itself, or `OUT/tokens` made from raw text."""
    data = cfg.data
    if data.path and (Path(data.path) / "meta.json").is_file():
        return Path(data.path)
    token_dir = out_dir / "tokens"
    if (token_dir / "meta.json").is_file():
        if _same_data(out_dir, data):
            return token_dir  # made by an earlier attempt at this run (the directory appears only when complete)
        shutil.rmtree(token_dir)
    corpus = read_corpus(data.path, data.max_bytes, data.encoding)  # raises now for a missing path
    texts = list(_train_texts(data))
    if not texts:
        raise UserError(f"the corpus at '{data.path or 'built-in'}' is empty; pass a file with text in it via --data")
    tok = Tokenizer.train(texts, data.vocab_size, progress=progress)
    write_token_dir(corpus, tok, token_dir, val_fraction=data.val_fraction, seed=data.seed,
                    workers=data.workers, progress=progress)
    return token_dir


def resolve_resume(cfg: RunConfig, out_dir: Path, resume: bool, quiet: bool = False) -> bool:
    """Whether this start really resumes: checked before anything is written, so a bad resume changes nothing.

    A `--resume` of a directory without a checkpoint yet (killed before its first save) starts
    the run, so a supervisor can always restart with the same command. A real resume must keep
    the run's model shape and data (training settings may change) and a checkpoint that verifies.
    """
    if not resume:
        return False
    if not ckpt.list_steps(out_dir):
        if not quiet:
            print(f"nothing to resume in '{out_dir}' yet (no checkpoint saved): starting the run", flush=True)
        return False
    check_resume_config(load_run_config(out_dir), cfg)
    ckpt.find_checkpoint(out_dir)  # a corrupt checkpoint fails here, before config.toml is rewritten
    return True


def pretrain(cfg: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True, quiet: bool = False,
             token_dir: Path | None = None, force: bool = False, verbose: bool = False, sample=None):
    """Prepare the data, build the model, run the loop. Returns (TrainResult, model, token_dir, cfg).

    `token_dir`: what `prepare_data(cfg, out_dir)` already returned (the speedrun times that stage alone).
    `force`: write into a directory holding files that are not a run's; `verbose`: print the resolved
    config (it is saved to config.toml either way). `sample(model, tokenizer) -> text`: the periodic
    samples of `train.sample_every` (the CLI passes the inference engine's). A failed start removes what it wrote, unless a
    checkpoint exists (then the run can be resumed).
    """
    distributed.check_layout(cfg.parallel, cfg.model, cfg.train.grad_accum, cfg.train.optimizer)  # one sentence, before any collective
    world = distributed.setup(cfg.parallel, cfg.train.batch_size, resolve_device(cfg.train.device))
    out_dir = check_output_dir(out_dir, ckpt.RUN_ENTRIES, force=force)
    resume = resolve_resume(cfg, out_dir, resume, quiet)
    quiet = quiet or not world.is_main
    # Under torchrun rank 0 owns the directory: another rank's failure must not delete it under rank 0.
    cleanup = removed_on_failure(out_dir, keep=lambda d: bool(ckpt.list_steps(d))) if world.is_main else nullcontext()
    with cleanup:
        return _pretrain(cfg, out_dir, resume, progress and world.is_main, quiet, token_dir, verbose, world, sample)


def _prepared(cfg: RunConfig, out_dir: Path, progress: bool, world: distributed.World) -> Path:
    """`prepare_data`, done by rank 0 while the other ranks wait; they then read what it made."""
    if world.is_main:
        token_dir = prepare_data(cfg, out_dir, progress)
    distributed.barrier()
    if world.is_main:
        return token_dir
    given = Path(cfg.data.path) if cfg.data.path else None
    return given if given is not None and (given / "meta.json").is_file() else out_dir / "tokens"


def _pretrain(cfg: RunConfig, out_dir: Path, resume: bool, progress: bool, quiet: bool, token_dir: Path | None,
              verbose: bool, world: distributed.World, sample=None):
    check_out_dir(out_dir, resume)  # before the data work, which can take minutes
    token_dir = token_dir or _prepared(cfg, out_dir, progress, world)
    meta = read_meta(token_dir)
    vocab = -(-meta["vocab_size"] // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    if cfg.model.vocab_size != vocab:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=vocab))
    if world.is_main:
        atomic_write_bytes(out_dir / "tokenizer.json", (token_dir / "tokenizer.json").read_bytes())
    tc = cfg.train
    ckpt.seed_everything(tc.seed)
    model = Transformer(cfg.model)
    # train.batch_size is the global batch: each rank draws its share, from its own random stream.
    # The tp ranks of one replica draw the same rows (data_rank): they compute one model together.
    loader = TokenLoader(token_dir, "train", cfg.model.block_size, tc.batch_size // world.data_size, seed=tc.seed,
                         rank=world.data_rank, world_size=world.data_size)
    val = window_batches(val_windows(token_dir, cfg.model.block_size, tc.eval_batches * tc.batch_size), tc.batch_size)
    if not quiet:
        print(f"model: {model.num_params() / 1e6:.2f}M parameters; data: {meta['splits']['train']['tokens']:,} train "
              f"tokens in {token_dir}; {cfg.tokens_per_step:,} tokens a step", flush=True)
    tokenizer = Tokenizer.load(out_dir / "tokenizer.json") if sample else None
    result = train(model, cfg, loader, out_dir, val_batches=val, tokens_per_byte=tokens_per_byte(meta),
                   resume=resume, quiet=quiet or not verbose, manifest=token_dir / "meta.json",
                   sample=(lambda m: sample(m, tokenizer)) if sample else None)
    return result, model, token_dir, cfg
