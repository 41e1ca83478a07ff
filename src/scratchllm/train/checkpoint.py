"""Checkpoints and run directories: save atomically, load back exactly, refuse anything corrupt.

A run directory looks like this:

    runs/NAME/
      config.toml                 the resolved RunConfig ([model], [train], [data])
      tokenizer.json
      metrics.jsonl
      checkpoints/step-000500/    model.safetensors, optimizer.pt, state.json

A step directory is built under a hidden temporary name and renamed into place only when
every file in it is written and synced, so a crash mid-save leaves at most a hidden
`.step-*.tmp` directory that nothing reads. `state.json` records each file's size and
SHA-256: a checkpoint whose bytes changed afterwards (a truncated copy, a bad disk) is
refused with one clear sentence instead of loading garbage.

>>> import tempfile, torch
>>> run = tempfile.mkdtemp()
>>> net = torch.nn.Linear(3, 2)
>>> _ = save_checkpoint(run, 7, net, state={"loader": {"pos": 1}})
>>> ckpt = find_checkpoint(run)
>>> ckpt.step, ckpt.state["loader"]
(7, {'pos': 1})
>>> load_weights(torch.nn.Linear(3, 2), ckpt).weight.equal(net.weight)
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file, load_model, save_model

from scratchllm.config import dumps_toml
from scratchllm.errors import UserError
from scratchllm.model.heads import PolicyValueModel, RewardModel
from scratchllm.model.lora import ADAPTER_CONFIG, adapt_from_spec
from scratchllm.model.quant import load_quantized
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer import load_tokenizer
from scratchllm.train.config import RunConfig, load_run_config
from scratchllm.utils.atomic import atomic_directory, atomic_write_text, named_os_errors

FORMAT_VERSION = 1
# A sharded checkpoint (train/sharded_checkpoint.py) keeps DCP's per-rank files under dcp/ and this kind.
DCP_DIR, SHARDED_KIND = "dcp", "sharded"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# What commands that write a run directory put there (utils/outdir.py's `owned` patterns): a
# directory holding only these is a run (or a failed start of one), anything else is not ours.
RUN_ENTRIES = ("config.toml", "metrics.jsonl", "tokenizer.json", "tokens", "checkpoints", "samples.txt",
               "report.md", "*.png", "run_info.json", "samples.jsonl", "tb", "mlflow.db", "mlflow_run_id", "mlruns",
               "wandb", "wandb_run_id")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under torch.compile and DDP wrappers (whose parameter names carry prefixes)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def step_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}"


def list_steps(run_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints of a run, oldest first (hidden temporaries never count)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    steps = [int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(steps)


# --- random number generator states (python, numpy, torch, cuda) as JSON ---------------------

def _tensor_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _b64_tensor(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is reproducible from its config."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG's state, JSON-serialisable, so a resumed run draws the same numbers."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": _tensor_b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [_tensor_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(_b64_tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_b64_tensor(s) for s in state["cuda"]])


# --- saving -----------------------------------------------------------------------------------

def _file_record(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def save_checkpoint(run_dir: str | Path, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None,
                    state: dict[str, Any] | None = None, keep: int | None = None) -> Path:
    """Write `checkpoints/step-NNNNNN/` atomically; keep only the newest `keep` step directories.

    `state` holds anything JSON-serialisable the caller needs to resume (loader state, RNGs, ...).
    """
    root = Path(run_dir) / "checkpoints"
    for stale in root.glob(".step-*.tmp"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    target = step_dir(run_dir, step)
    with atomic_directory(target) as tmp:
        # save_model (not save_file) because tied embeddings share storage, which save_file refuses.
        with named_os_errors(target / "model.safetensors"):
            save_model(unwrap(model), str(tmp / "model.safetensors"))
        files = ["model.safetensors"]
        if optimizer is not None:
            # to a file object: then a full disk surfaces as the OSError under torch's RuntimeError
            with named_os_errors(target / "optimizer.pt"), open(tmp / "optimizer.pt", "wb") as f:
                torch.save(optimizer.state_dict(), f)
            files.append("optimizer.pt")
        # A module that saves only part of itself (LoRA's AdapterOnly) names the loader that opens it.
        kind = {"kind": unwrap(model).checkpoint_kind} if hasattr(unwrap(model), "checkpoint_kind") else {}
        record = {"format": FORMAT_VERSION, "step": step, **kind, **(state or {}),
                  "files": {name: _file_record(tmp / name) for name in files}}
        atomic_write_text(tmp / "state.json", json.dumps(record))
    if keep:
        for old in list_steps(run_dir)[:-keep]:
            shutil.rmtree(step_dir(run_dir, old), ignore_errors=True)
    return target


def save_run_weights(run_dir: str | Path, model: torch.nn.Module, tokenizer=None, config=None,
                     step: int = 0) -> Path:
    """Make `run_dir` a loadable run from weights alone (imports, first models): config, tokenizer, weights.

    `config` is a RunConfig; None builds one around the model's own `ModelConfig` (`model.config`).

    >>> import tempfile
    >>> from scratchllm.model.config import ModelConfig
    >>> model = Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16))
    >>> run_dir = tempfile.mkdtemp() + "/imported"
    >>> save_run_weights(run_dir, model).name
    'step-000000'
    >>> load_run(run_dir).config.model.n_embd
    16
    """
    run_dir = Path(run_dir)
    if config is None:
        config = RunConfig(model=_model_config(model))
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.toml", dumps_toml(config))
    if tokenizer is not None:
        tokenizer.save(str(run_dir / "tokenizer.json"))
    return save_checkpoint(run_dir, step, model)


def _model_config(model: torch.nn.Module):
    inner = unwrap(model)
    for name in ("config", "cfg"):
        if hasattr(inner, name):
            return getattr(inner, name)
    raise TypeError("pass config=RunConfig(model=...) for a model without a .config attribute")


# --- loading ----------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    """A verified step directory: its path, step and the contents of its state.json."""

    path: Path
    step: int
    state: dict[str, Any]

    @property
    def has_optimizer(self) -> bool:
        return "optimizer.pt" in self.state["files"]


def _verify(path: Path, weights_only: bool = False) -> Checkpoint:
    corrupt = f"checkpoint '{path}' is corrupt or incomplete"
    fix = "delete that directory to fall back to an earlier one, or retrain"
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = state["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{corrupt} (unreadable state.json); {fix}") from None
    for name, want in files.items():
        if weights_only and name != "model.safetensors":
            continue  # e.g. generation never reads the (large) optimizer file
        f = path / name
        if not f.is_file() or f.stat().st_size != want["bytes"] or _file_record(f)["sha256"] != want["sha256"]:
            raise UserError(f"{corrupt} ({name} is missing or does not match its checksum); {fix}")
    return Checkpoint(path=path, step=int(state["step"]), state=state)


def find_checkpoint(run_dir: str | Path, step: int | None = None, weights_only: bool = False) -> Checkpoint:
    """The newest checkpoint (or the one at `step`) of a run, verified against its checksums

    (only the weights' checksum with `weights_only`)."""
    steps = list_steps(run_dir)
    if not steps:
        raise UserError(f"run directory '{run_dir}' has no checkpoints; train it first (scratchllm train --out {run_dir})")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise UserError(f"run '{run_dir}' has no checkpoint at step {step}; it has steps {steps}")
    return _verify(step_dir(run_dir, step), weights_only)


def load_weights(model: torch.nn.Module, ckpt: Checkpoint, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Copy a checkpoint's weights into `model` (same architecture); returns `model`."""
    try:
        load_model(unwrap(model), str(ckpt.path / "model.safetensors"), strict=True, device=str(device))
    except RuntimeError as e:
        raise UserError(f"checkpoint '{ckpt.path}' does not fit this model ({str(e).splitlines()[0]}); "
                        "check that config.toml's [model] table matches the weights") from None
    return model


def load_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint, device: str | torch.device = "cpu") -> None:
    """Restore optimizer moments and step counts (weights_only: never unpickle arbitrary objects)."""
    if not ckpt.has_optimizer:
        raise UserError(f"checkpoint '{ckpt.path}' has no optimizer state, so it cannot be resumed; start a new run from it")
    saved = torch.load(ckpt.path / "optimizer.pt", map_location=device, weights_only=True)
    for group, current in zip(saved["param_groups"], optimizer.param_groups):
        # subtle: fused/foreach describe the machine that saved (a GPU); keep this machine's choice.
        for key in ("fused", "foreach"):
            if key in current:
                group[key] = current[key]
    optimizer.load_state_dict(saved)


@dataclass
class Run:
    """A loaded run: `.model` (eval mode), `.tokenizer`, `.config` (RunConfig), `.run_dir`, `.step`."""

    model: torch.nn.Module
    tokenizer: Any
    config: Any
    run_dir: Path
    step: int


def load_plain(config, ckpt: Checkpoint, run_dir: Path) -> torch.nn.Module:
    """A checkpoint of kind "model": every weight of a `Transformer(config.model)`, loaded strictly."""
    return load_weights(Transformer(config.model), ckpt)


def load_lora(config, ckpt: Checkpoint, run_dir: Path) -> torch.nn.Module:
    """A checkpoint of kind "lora": the adapters alone; the base run is the one adapter_config.json names."""
    try:
        spec = json.loads((run_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"LoRA run '{run_dir}' has no readable {ADAPTER_CONFIG}; the run directory is incomplete") from None
    base = Path(spec["base"]) if Path(spec["base"]).is_absolute() else run_dir / spec["base"]
    if not list_steps(base):
        raise UserError(f"LoRA run '{run_dir}' adapts the base run '{base}', which is missing; restore that "
                        f"directory (or edit 'base' in {run_dir / ADAPTER_CONFIG}), or use a merged run")
    return adapt_from_spec(load_run(base).model, spec, load_file(str(ckpt.path / "model.safetensors")))


def load_reward(config, ckpt: Checkpoint, run_dir: Path) -> torch.nn.Module:
    """A checkpoint of kind "reward": a `RewardModel` (a Transformer and its scalar head), loaded strictly."""
    return load_weights(RewardModel(Transformer(config.model)), ckpt)


def load_policy_value(config, ckpt: Checkpoint, run_dir: Path) -> torch.nn.Module:
    """A checkpoint of kind "policy_value" (PPO): the policy and its value head; the policy is returned."""
    return load_weights(PolicyValueModel(Transformer(config.model)), ckpt).base


def load_sharded(config, ckpt: Checkpoint, run_dir: Path) -> torch.nn.Module:
    """A checkpoint of kind "sharded": DCP's per-rank files, read whole into one `Transformer(config.model)`."""
    model = Transformer(config.model)
    state = {"model": model.state_dict()}
    # DCP reads each tensor's pieces from whichever rank's file holds them into the whole tensor given
    dcp.load(state, checkpoint_id=str(ckpt.path / DCP_DIR))
    model.load_state_dict(state["model"])
    return model


# What a checkpoint holds, by the "kind" its state.json records (absent: "model"), and how to
# build a module from it: loader(config, checkpoint, run_dir) -> nn.Module on the CPU. Other kinds
# (a base + adapter, quantized tensors) add an entry here, with their loader in the layer that
# owns the format (model/lora.py, model/quant.py), so load_run stays the one way to open a run.
RUN_KINDS: dict[str, Callable[[Any, Checkpoint, Path], torch.nn.Module]] = {
    "model": load_plain, "lora": load_lora, "quantized": load_quantized, "reward": load_reward,
    "policy_value": load_policy_value,
    SHARDED_KIND: load_sharded}


def load_run(run_dir: str | Path, step: int | None = None, device: str = "cpu") -> Run:
    """Load a run directory's model (newest checkpoint unless `step`), tokenizer and config.

    The checkpoint's `kind` (state.json) picks the loader in `RUN_KINDS`.

    >>> import tempfile
    >>> from scratchllm.model.config import ModelConfig
    >>> model = Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16))
    >>> run_dir = tempfile.mkdtemp()
    >>> _ = save_run_weights(run_dir, model)
    >>> run = load_run(run_dir)
    >>> run.model(torch.tensor([[1, 2, 3]])).shape, run.tokenizer
    (torch.Size([1, 3, 64]), None)
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; pass the --out directory of a training run")
    config = load_run_config(run_dir)
    ckpt = find_checkpoint(run_dir, step, weights_only=True)
    tokenizer = None
    if (run_dir / "tokenizer.json").is_file():
        tokenizer = load_tokenizer(str(run_dir / "tokenizer.json"))
        if tokenizer.vocab_size > config.model.vocab_size:
            raise UserError(f"tokenizer.json in '{run_dir}' has {tokenizer.vocab_size} ids but the model only "
                            f"{config.model.vocab_size}; the run directory mixes files of two runs")
    kind = ckpt.state.get("kind", "model")
    if kind not in RUN_KINDS:
        raise UserError(f"checkpoint '{ckpt.path}' holds weights of kind '{kind}', which this version of scratchllm "
                        f"cannot load (it knows {sorted(RUN_KINDS)}); upgrade scratchllm or re-export the run")
    model = RUN_KINDS[kind](config, ckpt, run_dir)
    model.to(device).eval()
    return Run(model=model, tokenizer=tokenizer, config=config, run_dir=run_dir, step=ckpt.step)
