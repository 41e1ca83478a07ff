"""The run config: what a training run is made of, as four dataclass tables.

`RunConfig` = `[model]` (a `ModelConfig`: the network's shape) + `[train]` (a `TrainConfig`:
optimisation, schedule, precision, logging, checkpoints, health) + `[data]` (a `DataConfig`: where
the tokens come from) + `[parallel]` (a `ParallelConfig`: DDP or FSDP under torchrun) + `[track]`
(a `TrackConfig`: which tracking backends record the run).
A preset (`src/scratchllm/presets/NAME.toml`) fills some of the
fields; `key=value` overrides fill more; the result is printed at start and saved as
`runs/NAME/config.toml`, which `load_run_config` reads back.

>>> cfg = resolve_run_config("tiny-cpu", ["train.max_steps=10", "model.n_layer=2"])
>>> cfg.train.max_steps, cfg.model.n_layer
(10, 2)
>>> resolve_run_config("tiny-cpu", ["train.max_lrr=1"])
Traceback (most recent call last):
...
scratchllm.errors.UserError: unknown config key 'train.max_lrr'; did you mean 'train.max_lr'?
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scratchllm.config import apply_overrides, from_dict, load_preset
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.utils.files import read_toml


@dataclass
class TrainConfig:
    seed: int = 1337
    device: str = "auto"          # auto = cuda if available, else mps, else cpu
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto = bf16 autocast on CUDA, fp32 elsewhere
    batch_size: int = 16          # sequences per micro-batch
    grad_accum: int = 1           # micro-batches per optimizer step
    max_steps: int = 1000         # optimizer steps
    stop_after: int = 0           # save and stop after this step, keeping max_steps' schedule (0 = run to max_steps)
    max_minutes: float = 0.0      # wall-clock budget (0 = none); see schedule.lr_at. Not bitwise reproducible.
    max_lr: float = 6e-4
    min_lr: float = 6e-5
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_steps: int = 100
    decay_frac: float = 0.2       # wsd only: the last fraction of steps that decays to min_lr
    weight_decay: float = 0.1     # on >=2-D weights only (matrices, embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    # muon: Muon for the blocks' matrices, AdamW for the rest (train/muon.py); adamw8bit: block-wise
    # 8-bit moments (train/adamw8bit.py)
    optimizer: Literal["adamw", "muon", "adamw8bit"] = "adamw"
    muon_lr: float = 0.02         # Muon's peak lr (its group follows the schedule scaled by muon_lr / max_lr)
    muon_momentum: float = 0.95   # Muon's Nesterov momentum
    grad_clip: float = 1.0        # max global grad norm; 0 = off
    eval_every: int = 250         # steps between validations (and at the last step)
    eval_batches: int = 20        # fixed val windows = eval_batches * batch_size
    log_every: int = 10
    checkpoint_every: int = 1000  # 0 = only at the end
    keep_checkpoints: int = 2     # newest K step directories kept
    compile: bool = False         # torch.compile the model (CUDA)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    checkpoint_blocks_every: int = 1      # with gradient_checkpointing: only every k-th block (selective)
    progress: bool = True         # tqdm bar
    nonfinite: Literal["skip", "stop"] = "skip"  # a NaN/inf loss or gradient: drop that update, or save and stop
    spike_factor: float = 3.0     # log a spike when loss or grad norm exceeds this x its running mean (0 = off)
    keep_every: int = 0           # also keep every checkpoint whose step is a multiple of this (0 = none)
    keep_best: bool = False       # also keep the checkpoint with the lowest val_loss
    sample_every: int = 0         # steps between samples written to samples.jsonl (0 = none; needs a sampler)

    def validate(self) -> None:
        for name in ("batch_size", "grad_accum", "max_steps", "eval_batches", "log_every", "checkpoint_blocks_every"):
            if getattr(self, name) <= 0:
                raise UserError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.max_minutes < 0:
            raise UserError(f"train.max_minutes must be >= 0 (0 = no time limit), got {self.max_minutes}")
        if self.warmup_steps < 0 or self.eval_every < 0 or self.checkpoint_every < 0:
            raise UserError("train.warmup_steps, train.eval_every and train.checkpoint_every must be >= 0")
        if not 0 <= self.decay_frac <= 1:
            raise UserError(f"train.decay_frac must be between 0 and 1, got {self.decay_frac}")
        if min(self.spike_factor, self.keep_every, self.sample_every, self.stop_after) < 0:
            raise UserError("train.spike_factor, keep_every, sample_every and stop_after must be >= 0 (0 = off)")
        if self.optimizer == "muon" and not (self.muon_lr > 0 and self.max_lr > 0 and 0 <= self.muon_momentum < 1):
            raise UserError(f"train.optimizer=muon needs train.muon_lr > 0, train.max_lr > 0 and 0 <= "
                            f"train.muon_momentum < 1, got {self.muon_lr}, {self.max_lr}, {self.muon_momentum}")
        if self.keep_checkpoints < 1:
            raise UserError(f"train.keep_checkpoints must be at least 1, got {self.keep_checkpoints}")


def short_run_defaults(**settings) -> TrainConfig:
    """The training defaults of a short run on top of a trained model (SFT, DPO, a reward model):
    small batches, no weight decay, a short warmup, one kept checkpoint; `settings` change fields.

    >>> short_run_defaults(max_lr=1e-5).max_lr, short_run_defaults().weight_decay
    (1e-05, 0.0)
    """
    base = dict(batch_size=8, max_steps=200, warmup_steps=10, weight_decay=0.0, eval_every=50, eval_batches=8,
                log_every=10, checkpoint_every=100, keep_checkpoints=1)
    return TrainConfig(**{**base, **settings})


@dataclass
class DataConfig:
    path: str = ""                # "" = the built-in corpus; else .txt, a dir of .txt, .jsonl[.gz|.xz], or a token dir
    max_bytes: int = 0            # cap on raw text read (0 = no cap; the built-in corpus has its own default)
    vocab_size: int = 4096        # BPE vocabulary trained when the data is raw text
    tokenizer_bytes: int = 2_000_000  # text the tokenizer is trained on (a prefix of train)
    val_fraction: float = 0.02    # fraction of documents held out, chosen by a hash of (seed, index)
    workers: int = 2              # processes that tokenize
    seed: int = 0                 # split seed
    encoding: str = "utf-8"       # of .txt files (invalid bytes are replaced and counted; binary data is refused)

    def validate(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise UserError(f"data.val_fraction must be between 0 and 1, got {self.val_fraction}")


@dataclass
class ParallelConfig:
    """How a `torchrun` launch splits the work (train/distributed.py); one process ignores it."""
    dp: Literal["none", "ddp", "fsdp"] = "none"  # data parallel: replicate (ddp) or shard (fsdp) the model
    reshard_after_forward: bool = True  # fsdp: free gathered block weights after forward (less memory, more comms)
    cpu_offload: bool = False           # fsdp: keep sharded parameters, grads, optimizer state in CPU memory
    tp: int = 1                         # tensor parallel: each block's heads and MLP split over tp ranks
    sequence_parallel: bool = False     # tp: norms and residual adds on 1/tp of the positions each
    pp: int = 1                         # pipeline parallel: the blocks split into pp stages, one per rank
    pp_schedule: Literal["gpipe", "1f1b"] = "1f1b"  # pp: the order of micro-batches' forwards and backwards
    checkpoint: Literal["full", "sharded"] = "full"  # full: gathered to rank 0's usual files; sharded: DCP, a file a rank
    async_checkpoint: bool = False      # sharded: write in the background while training goes on

    def validate(self) -> None:
        for name in ("tp", "pp"):
            if getattr(self, name) < 1:
                raise UserError(f"parallel.{name} must be at least 1 (1 = off), got {getattr(self, name)}")
        if self.async_checkpoint and self.checkpoint != "sharded":
            raise UserError("parallel.async_checkpoint=true needs parallel.checkpoint=sharded; pass both")
        if self.tp > 1 and self.pp > 1:
            raise UserError("parallel.tp and parallel.pp do not combine here; pick one of them (and dp=fsdp with tp)")


@dataclass
class TrackConfig:
    backends: str = "jsonl"       # comma list of jsonl, tensorboard, mlflow, wandb (jsonl is always written)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.train.grad_accum * self.model.block_size


def resolve_run_config(preset: str | None, overrides: list[str] = ()) -> RunConfig:
    """Preset (name or .toml path) + dotted overrides -> a checked RunConfig (`model.depth` applied)."""
    data = load_preset(preset) if preset else {}
    cfg = apply_overrides(from_dict(RunConfig, data), list(overrides))
    explicit_lr = any(o.split("=", 1)[0].strip() in ("train.max_lr", "train.min_lr") for o in overrides)
    return with_depth(cfg, scale_lr=not explicit_lr)


def with_depth(cfg: RunConfig, scale_lr: bool = True) -> RunConfig:
    """Apply the `model.depth` dial: the model's shape (`ModelConfig.sized`) and a learning rate that
    transfers across sizes.

    The preset's learning rate is taken as tuned at the preset's own width w₀; at width w the
    dial uses lr·√(w₀/w): wider layers sum more inputs, so the same step moves their outputs
    more (the 1/√width rule nanochat applies to its AdamW parameters; a µP-flavoured heuristic,
    not full µP). An lr given on the command line is kept as given.

    >>> cfg = with_depth(RunConfig(model=ModelConfig(n_embd=128, depth=8), train=TrainConfig(max_lr=2e-3)))
    >>> cfg.model.n_embd, round(cfg.train.max_lr, 6)
    (512, 0.001)
    """
    if cfg.model.depth <= 0:
        return cfg
    sized = cfg.model.sized()
    train = cfg.train
    if scale_lr:
        factor = (cfg.model.n_embd / sized.n_embd) ** 0.5
        train = dataclasses.replace(train, max_lr=train.max_lr * factor, min_lr=train.min_lr * factor)
    sized.validate()
    return dataclasses.replace(cfg, model=sized, train=train)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """Read `run_dir/config.toml` back. Tables other stages add (e.g. `[sft]`) are ignored here."""
    path = Path(run_dir) / "config.toml"
    if not path.is_file():
        raise UserError(f"run directory '{run_dir}' has no config.toml; is it a scratchllm run (e.g. runs/speedrun)?")
    data = read_toml(path, "run config", bad="fix or re-create the run")
    if "model" not in data:
        raise UserError(f"'{path}' has no [model] table; re-create the run")
    known = {k: v for k, v in data.items() if k in ("model", "train", "data", "parallel", "track")}
    return from_dict(RunConfig, known)


# [data] fields a resume may change: they alter how the tokens are made, not which tokens.
_DATA_FREE_ON_RESUME = {"workers"}


def check_resume_config(saved: RunConfig, wanted: RunConfig) -> None:
    """Refuse a resume whose config changes the model's shape or the data (the first such key named).

    Training settings (max_steps, lr, eval_every ...) may change on a resume, except
    `train.optimizer`: the saved optimizer state belongs to the one that wrote it. The vocabulary
    size is not compared: it is derived from the tokenizer, which a resume keeps.

    >>> check_resume_config(RunConfig(), resolve_run_config(None, ["train.max_steps=5"]))
    >>> check_resume_config(RunConfig(), resolve_run_config(None, ["model.n_layer=3"]))
    Traceback (most recent call last):
    ...
    scratchllm.errors.UserError: model.n_layer=3 does not match the run being resumed (model.n_layer=12): a resume keeps the model's shape and data; drop that override, or start a new run with another --out
    """
    if saved.train.optimizer != wanted.train.optimizer:
        raise UserError(f"train.optimizer={wanted.train.optimizer} does not match the run being resumed "
                        f"(train.optimizer={saved.train.optimizer}), whose checkpoints hold that optimizer's state; "
                        "drop that override, or start a new run with another --out")
    for table, free in (("model", {"vocab_size"}), ("data", _DATA_FREE_ON_RESUME)):
        old, new = getattr(saved, table), getattr(wanted, table)
        for f in dataclasses.fields(old):
            a, b = getattr(old, f.name), getattr(new, f.name)
            if f.name not in free and a != b:
                raise UserError(f"{table}.{f.name}={b} does not match the run being resumed ({table}.{f.name}={a}): "
                                "a resume keeps the model's shape and data; drop that override, "
                                "or start a new run with another --out")
