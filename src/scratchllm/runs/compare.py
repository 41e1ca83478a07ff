"""Compare runs: the config keys that differ, and their curves overlaid in one figure.

`config_diff` flattens each run's `config.toml` to dotted keys and keeps those whose values
are not all equal; `plot_curves` draws loss, val_loss, lr and grad_norm against tokens seen,
one colour a run. Nothing here trains or writes into a run.

>>> config_diff({"a": {"model": {"n_layer": 2, "n_head": 2}}, "b": {"model": {"n_layer": 4, "n_head": 2}}})
{'model.n_layer': {'a': 2, 'b': 4}}
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from scratchllm.config import dotted_keys  # noqa: E402
from scratchllm.runs.summary import summarize  # noqa: E402
from scratchllm.train.tracking import read_metrics  # noqa: E402
from scratchllm.utils.atomic import atomic_write_bytes  # noqa: E402
from scratchllm.utils.files import read_toml  # noqa: E402

PANELS = ("loss", "val_loss", "lr", "grad_norm")


def config_diff(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{dotted key: {run: value}} for every key whose value is not the same in all runs."""
    flat = {name: dotted_keys(cfg) for name, cfg in configs.items()}
    keys = sorted(set().union(*flat.values()))
    return {k: {n: f.get(k) for n, f in flat.items()} for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1}


def read_configs(run_dirs: list[Path]) -> dict[str, dict[str, Any]]:
    for d in run_dirs:
        summarize(d)  # a directory that is not a run fails here, with its sentence
    return {d.name: read_toml(d / "config.toml", "run config", bad="fix or re-create the run") for d in run_dirs}


def plot_curves(run_dirs: list[Path], out: str | Path) -> Path:
    """Overlaid curves of the runs, one panel per quantity, written atomically as an image."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for d in run_dirs:
        records = read_metrics(d / "metrics.jsonl")
        for ax, key in zip(axes.flat, PANELS):
            points = [(r.get("tokens", r["step"]), r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), label=d.name, marker="o" if key == "val_loss" else None, markersize=3)
    for ax, key in zip(axes.flat, PANELS):
        ax.set_title(key)
        ax.set_xlabel("tokens")
        if key in ("loss", "val_loss"):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=out.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
    return out
