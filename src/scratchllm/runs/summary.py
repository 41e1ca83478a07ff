"""One run directory as a summary row, and the runs under a directory: what `runs list/show` print.

A run is a directory with `config.toml` and `metrics.jsonl` (any kind of run the loop wrote).
Its status comes from `run_info.json` ("running", "done", "interrupted", "stopped"), except
that a "running" run whose metrics have not moved for `STALE_S` is shown as "dead?" (a
process killed with SIGKILL cannot say so itself). Its preset is read off its recorded config: the
shipped preset whose `[model]` table the run's model matches on every key, else "custom" (a preset
with model overrides, or none; the loop records the resolved config, not the preset's name).
Nothing here writes.

>>> format_table([{"name": "a", "params": 1200, "step": 3}], ["name", "params", "step"])
'name  params  step\\n----  ------  ----\\na     1.2K    3   '
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from scratchllm.config import load_preset, preset_names
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import list_steps
from scratchllm.train.config import load_run_config
from scratchllm.train.run_info import read_run_info
from scratchllm.train.tracking import read_metrics

STALE_S = 300.0
COLUMNS = ["name", "preset", "params", "step", "tokens", "loss", "val_loss", "val_bpb", "status"]


def is_run(path: Path) -> bool:
    return (path / "config.toml").is_file() and (path / "metrics.jsonl").is_file()


def find_runs(root: str | Path) -> list[Path]:
    """The run directories at `root` and one level below it, by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    return [p for p in candidates if is_run(p)]


def count_params(run_dir: Path) -> int | None:
    """The model's parameter count from its config alone (built on the meta device: no memory, no time)."""
    try:
        cfg = load_run_config(run_dir).model
        with torch.device("meta"):
            return Transformer(cfg).num_params()
    except (UserError, ValueError, TypeError, KeyError):
        return None


def preset_of(run_dir: Path) -> str | None:
    """The shipped preset whose [model] table the run's recorded model config matches, else "custom";
    None when the run's config cannot be read."""
    try:
        model = load_run_config(run_dir).model
    except (UserError, ValueError, TypeError, KeyError):
        return None
    for name in preset_names():
        table = load_preset(name).get("model", {})
        if table and all(getattr(model, key, None) == value for key, value in table.items()):
            return name
    return "custom"


def status(run_dir: Path, info: dict[str, Any]) -> str:
    state = info.get("status", "unknown")
    if state == "running" and time.time() - (run_dir / "metrics.jsonl").stat().st_mtime > STALE_S:
        return "dead?"
    return state


def last_value(records: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in reversed(records) if r.get(key) is not None), None)


def summarize(run_dir: str | Path) -> dict[str, Any]:
    """name, preset, params, step, tokens, loss, val_loss, val_bpb, status, checkpoints of one run."""
    run_dir = Path(run_dir)
    if not is_run(run_dir):
        raise UserError(f"'{run_dir}' is not a run directory (no config.toml and metrics.jsonl); "
                        "pass a directory written by scratchllm train")
    records = read_metrics(run_dir / "metrics.jsonl")
    info = read_run_info(run_dir)
    return {"name": run_dir.name, "preset": preset_of(run_dir), "params": count_params(run_dir),
            "step": last_value(records, "step"),
            "tokens": last_value(records, "tokens"), "loss": last_value(records, "loss"),
            "val_loss": last_value(records, "val_loss"), "val_bpb": last_value(records, "val_bpb"),
            "status": status(run_dir, info), "checkpoints": list_steps(run_dir), "info": info}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1000:
        for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
            if value >= size:
                return f"{value / size:.1f}{unit}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
