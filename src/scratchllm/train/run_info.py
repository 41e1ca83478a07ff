"""What a run was made from, recorded once at its start in `OUT/run_info.json`.

The config is in `config.toml`; this file adds what the config cannot say: the git commit of
the scratchllm source and whether it had uncommitted changes, the versions of Python and the
packages that decide the numbers, the device, the seed, and the SHA-256 of the data manifest
(a token directory's `meta.json`, which records its shards' sizes), so `scratchllm reproduce`
and `scratchllm runs show` can tell whether two runs saw the same code and data. It knows
nothing of the loop; `status` is updated by whoever ends the run.

>>> info = collect_run_info(seed=7, device="cpu")
>>> info["seed"], info["device"], sorted(info["packages"])[:2]
(7, 'cpu', ['numpy', 'python'])
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from scratchllm.utils.atomic import atomic_write_text

PACKAGES = ("numpy", "safetensors", "scratchllm", "torch")
_SOURCE = Path(__file__).resolve().parents[1]


def git_state(where: Path = _SOURCE) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git checkout holding `where`, or None (an installed wheel, no git)."""
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_name(device: str) -> str:
    """The device as a person reads it: "cpu", or the GPU's name."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def file_sha256(path: str | Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def collect_run_info(seed: int, device: str, manifest: str | Path | None = None) -> dict[str, Any]:
    return {"seed": seed, "device": device_name(device), "platform": platform.platform(),
            "git": git_state(), "packages": {"python": platform.python_version(),
                                             **{name: _version(name) for name in PACKAGES}},
            "data_manifest": str(manifest) if manifest else None, "data_manifest_sha256": file_sha256(manifest),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "status": "running"}


def write_run_info(out_dir: str | Path, info: dict[str, Any]) -> None:
    atomic_write_text(Path(out_dir) / "run_info.json", json.dumps(info, indent=1) + "\n")


def read_run_info(out_dir: str | Path) -> dict[str, Any]:
    """The run's recorded metadata ({} for a run from before this file existed, or a torn one)."""
    try:
        return json.loads((Path(out_dir) / "run_info.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def set_status(out_dir: str | Path, status: str, **extra: Any) -> None:
    info = read_run_info(out_dir)
    if info:
        write_run_info(out_dir, {**info, "status": status, **extra})
