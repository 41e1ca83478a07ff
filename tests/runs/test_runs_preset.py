"""`scratchllm runs list`'s preset column, read off each run's recorded config.toml: a run of a shipped
preset (train keys overridden) shows that preset, one whose model was changed shows "custom"."""

from __future__ import annotations

import json

from scratchllm.cli import main
from scratchllm.config import dumps_toml, preset_names
from scratchllm.train.config import resolve_run_config


def _fake_run(path, preset: str, *overrides: str) -> None:
    """A run directory as the loop leaves it, without the training: config.toml and a metrics line."""
    path.mkdir(parents=True)
    (path / "config.toml").write_text(dumps_toml(resolve_run_config(preset, list(overrides))))
    (path / "metrics.jsonl").write_text(json.dumps({"step": 3, "tokens": 96, "loss": 2.5}) + "\n")


def test_list_shows_each_runs_preset(tmp_path, capsys):
    assert {"tiny-cpu", "gpt2-124m"} <= set(preset_names())
    _fake_run(tmp_path / "a", "tiny-cpu", "train.max_steps=5", "train.max_lr=1e-3")
    _fake_run(tmp_path / "b", "gpt2-124m")
    _fake_run(tmp_path / "c", "tiny-cpu", "model.n_layer=2")
    assert main(["runs", "list", str(tmp_path)]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows == {"a": "tiny-cpu", "b": "gpt2-124m", "c": "custom"}
