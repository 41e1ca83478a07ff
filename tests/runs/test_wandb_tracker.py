"""`track.backends=...,wandb`: an offline Weights & Biases run in the run directory, read back with
wandb's own reader of its transaction log (`wandb leet inspect --json`, which needs no account and no
network): the curves equal metrics.jsonl, the config holds config.toml and the run's metadata."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runs_helpers import run_tiny

from scratchllm.errors import UserError
from scratchllm.train.tracking import read_metrics

pytest.importorskip("wandb")


def _records(run_dir: Path) -> list[dict]:
    """The .wandb transaction log's records, as wandb itself decodes them."""
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    wandb_cli = Path(sys.executable).with_name("wandb")
    cmd = [str(wandb_cli)] if wandb_cli.exists() else [shutil.which("wandb") or "wandb"]
    out = subprocess.run(cmd + ["leet", "inspect", "--json", str(offline)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def wandb_run(token_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("wandb") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(out))
        mp.setenv("WANDB_CACHE_DIR", str(out.parent / "wandb-cache"))    # nothing written outside tmp
        mp.setenv("WANDB_CONFIG_DIR", str(out.parent / "wandb-config"))
        run_tiny(token_dir, out, "track.backends=jsonl,wandb", "train.max_steps=6", "train.sample_every=3",
                 sample=lambda model: "a sample")
    return out


def test_history_holds_the_jsonl_curves(wandb_run):
    history = [r["history"] for r in _records(wandb_run) if r["type"] == "history"]
    records = read_metrics(wandb_run / "metrics.jsonl")
    losses = [(h["step"]["num"], h["item"]["loss"]) for h in history if "loss" in h["item"]]
    assert losses == [(r["step"], pytest.approx(r["loss"], rel=1e-12)) for r in records]
    vals = [h["step"]["num"] for h in history if "val_loss" in h["item"]]
    assert vals == [r["step"] for r in records if "val_loss" in r]
    # the periodic samples: one table per sample step, its file under the run's media
    assert [h["step"]["num"] for h in history if any(k.startswith("sample.") for k in h["item"])] == [3, 6]
    (table,) = (wandb_run / "wandb").glob("offline-run-*/files/media/table/sample_3_*.table.json")
    assert json.loads(table.read_text())["data"] == [[3, "a sample"]]


def test_config_records_the_run_and_its_metadata(wandb_run, token_dir):
    (run,) = [r["run"] for r in _records(wandb_run) if r["type"] == "run"]
    config = run["config"]["update"]
    assert run["display_name"] == "run" and run["project"] == "scratchllm"
    assert run["run_id"] == (wandb_run / "wandb_run_id").read_text()
    assert config["train"]["max_steps"] == 6 and config["model"]["n_embd"] == 16
    info = config["run_info"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert info["git"]["commit"] == head and isinstance(info["git"]["dirty"], bool)
    assert info["seed"] == 1337 and info["device"] == "cpu"
    assert info["data_manifest_sha256"] == hashlib.sha256((token_dir / "meta.json").read_bytes()).hexdigest()
    import torch

    assert info["packages"]["torch"] == torch.__version__
    assert [r for r in _records(wandb_run) if r["type"] == "exit"]       # closed: the run finished


def test_missing_wandb_names_the_package(token_dir, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(UserError, match="'wandb' package is not installed; pip install"):
        run_tiny(token_dir, tmp_path / "run", "track.backends=jsonl,wandb")
