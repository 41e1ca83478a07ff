"""Each tracking backend writes what it should, read back with that library's own reader; run_info.json
records git, versions, device, seed and the data manifest's hash."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from runs_helpers import run_tiny

from scratchllm.errors import UserError
from scratchllm.train.tracking import read_metrics

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracked_run(token_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked") / "run"
    run_tiny(token_dir, out, "track.backends=jsonl,tensorboard,mlflow", "train.max_steps=6")
    return out


def test_tensorboard_event_files_hold_the_jsonl_curves(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tracked_run / "tb"))
    acc.Reload()
    records = read_metrics(tracked_run / "metrics.jsonl")
    events = acc.Scalars("loss")
    assert [e.step for e in events] == [r["step"] for r in records]
    # tensorboard stores float32: the jsonl's float64 rounded once
    assert [e.value for e in events] == pytest.approx([r["loss"] for r in records], rel=1e-6)
    assert [e.step for e in acc.Scalars("val_loss")] == [r["step"] for r in records if "val_loss" in r]
    assert "run_info" in " ".join(acc.Tags()["tensors"])


def test_mlflow_store_holds_the_run_params_and_metrics(tracked_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tracked_run / "mlruns").as_uri())
    run = client.get_run((tracked_run / "mlflow_run_id").read_text())
    history = client.get_metric_history(run.info.run_id, "loss")
    records = read_metrics(tracked_run / "metrics.jsonl")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(r["step"], r["loss"]) for r in records]
    assert run.data.params["seed"] == "1337"
    assert run.info.status == "FINISHED"


def test_run_info_records_code_data_and_device(tracked_run, token_dir):
    info = json.loads((tracked_run / "run_info.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert info["git"]["commit"] == head and isinstance(info["git"]["dirty"], bool)
    assert info["data_manifest_sha256"] == hashlib.sha256((token_dir / "meta.json").read_bytes()).hexdigest()
    assert info["seed"] == 1337 and info["device"] == "cpu" and info["status"] == "done"
    import torch

    assert info["packages"]["torch"] == torch.__version__


def test_unknown_backend_is_one_sentence(token_dir, tmp_path):
    with pytest.raises(UserError, match="unknown tracking backend 'wandbb'"):
        run_tiny(token_dir, tmp_path / "run", "track.backends=jsonl,wandbb")


def test_missing_backend_package_names_it(token_dir, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match="'tensorboard' package is not installed; pip install"):
        run_tiny(token_dir, tmp_path / "run", "track.backends=tensorboard")
