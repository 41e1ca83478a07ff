"""Tracking backends: where a run's metrics go besides `metrics.jsonl`, behind one small interface.

`track.backends` (the `[track]` table) names them: `jsonl` (always on: `tracking.MetricsLog`,
the file every other tool of this project reads), `tensorboard` (event files under `OUT/tb/`,
written by `torch.utils.tensorboard`), `mlflow` (a local file store `OUT/mlruns/`, no server;
mlflow-skinny has no SQL store) and `wandb` (Weights & Biases, offline unless WANDB_MODE says
otherwise: `OUT/wandb/offline-run-*/`, no account, no network; `wandb sync` uploads it later). A backend is an object with `log(record)` (one metrics.jsonl line), `text(tag, step,
text)` (a sample) and `close()`; it is told the run's metadata (`run_info.json`: config, git,
versions, device, data hash, seed) once at the start. This module knows nothing of the loop.
A backend whose package is missing is one `UserError` naming the package (optional extras).

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> [type(t).__name__ for t in open_trackers("jsonl", out, {"seed": 1})]
[]
>>> open_trackers("jsonl,tensorbored", out, {})
Traceback (most recent call last):
...
scratchllm.errors.UserError: unknown tracking backend 'tensorbored' in track.backends; choose from jsonl, tensorboard, mlflow, wandb
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

from scratchllm.config import dotted_keys
from scratchllm.errors import UserError

BACKENDS = ("jsonl", "tensorboard", "mlflow", "wandb")


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    """The finite scalar fields of a record (flags, lists and nulls are not curves)."""
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and k != "step"}


def _missing(package: str, backend: str) -> UserError:
    return UserError(f"track.backends names '{backend}' but the '{package}' package is not installed; "
                     f"pip install '{package}' (or scratchllm[track]), or drop it from track.backends")


class TensorBoardTracker:
    """Scalars per step, the run's metadata and samples as text, in `OUT/tb/` event files."""

    def __init__(self, out_dir: Path, info: dict[str, Any]):
        try:  # optional dependency: tensorboard (torch.utils.tensorboard needs it)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise _missing("tensorboard", "tensorboard") from e
        self.writer = SummaryWriter(str(out_dir / "tb"))
        self.writer.add_text("run_info", "```\n" + json.dumps(info, indent=1, default=str) + "\n```", 0)

    def log(self, record: dict[str, Any]) -> None:
        for name, value in _numbers(record).items():
            self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()  # a killed run keeps what it logged

    def text(self, tag: str, step: int, text: str) -> None:
        self.writer.add_text(tag, text, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MlflowTracker:
    """One MLflow run in a local file store (`OUT/mlruns/`); a resume continues the same run."""

    def __init__(self, out_dir: Path, info: dict[str, Any]):
        try:  # optional dependency: mlflow (mlflow-skinny is enough)
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise _missing("mlflow-skinny", "mlflow") from e
        # mlflow 3 keeps the file store in "maintenance mode" behind this switch; it is the store that
        # needs no database and no server, and what the run directory can carry with it.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=(out_dir.resolve() / "mlruns").as_uri())
        id_file = out_dir / "mlflow_run_id"
        if id_file.is_file():
            self.run_id = id_file.read_text().strip()
        else:
            experiment = self.client.get_experiment_by_name("scratchllm")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("scratchllm")
            self.run_id = self.client.create_run(experiment_id, run_name=out_dir.name).info.run_id
            id_file.write_text(self.run_id)
            for key, value in dotted_keys(info).items():
                self.client.log_param(self.run_id, key, str(value)[:500])  # MLflow caps a param's length

    def log(self, record: dict[str, Any]) -> None:
        for name, value in _numbers(record).items():
            self.client.log_metric(self.run_id, name, value, step=record["step"])

    def text(self, tag: str, step: int, text: str) -> None:
        self.client.log_text(self.run_id, text, f"{tag}/step-{step:06d}.txt")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbTracker:
    """One Weights & Biases run under `OUT/wandb/`, offline by default; a resume continues the same run id.

    Its config is the run's `config.toml` (the hyperparameters W&B compares runs by) plus the
    metadata under `run_info`; the curves are the metrics.jsonl records, at their steps.
    """

    def __init__(self, out_dir: Path, info: dict[str, Any]):
        try:  # optional dependency: wandb
            import wandb
        except ImportError as e:
            raise _missing("wandb", "wandb") from e
        config_file = out_dir / "config.toml"
        config = tomllib.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        id_file = out_dir / "wandb_run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)   # W&B's 8-char ids
        # Offline unless the user asked for more: no account and no network needed, and the files stay in
        # the run directory. No console capture, system-stats thread or code copy: the run has its own.
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "scratchllm"), name=out_dir.name, id=run_id,
                              resume="allow", dir=str(out_dir), mode=os.environ.get("WANDB_MODE") or "offline",
                              config={**config, "run_info": info}, settings=settings)
        id_file.write_text(run_id)
        self.wandb = wandb

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(_numbers(record), step=record["step"])

    def text(self, tag: str, step: int, text: str) -> None:
        # A one-cell table per sample: W&B shows text in tables, and history keeps one per step.
        self.run.log({tag: self.wandb.Table(columns=["step", "text"], data=[[step, text]])}, step=step)

    def close(self) -> None:
        self.run.finish()


_CLASSES = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker, "wandb": WandbTracker}


def open_trackers(backends: str, out_dir: str | Path, info: dict[str, Any]) -> list:
    """The extra backends `backends` (comma list) names, opened on `out_dir` (jsonl needs none)."""
    names = [n.strip() for n in backends.split(",") if n.strip()]
    for name in names:
        if name not in BACKENDS:
            raise UserError(f"unknown tracking backend '{name}' in track.backends; choose from {', '.join(BACKENDS)}")
    return [_CLASSES[name](Path(out_dir), info) for name in names if name != "jsonl"]
