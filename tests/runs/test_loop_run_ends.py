"""How a run ends: at max_steps, at `stop_after`, when its time budget is spent, or on a signal, and
what it says and records then: the progress bar, the budget line, the status in run_info.json,
the wall time, and a resume of a finished run doing nothing."""

from __future__ import annotations

import json
import signal
import time

import pytest
from runs_helpers import run_tiny
from tqdm import tqdm

from scratchllm.train import loop
from scratchllm.train.step import next_token_loss
from scratchllm.train.tracking import read_metrics

BUDGET = "time budget of"


def _info(run):
    return json.loads((run / "run_info.json").read_text())


def test_a_full_run_is_done_says_no_budget_line_and_times_itself(token_dir, tmp_path, capsys):
    before = time.perf_counter()
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=4")
    elapsed = time.perf_counter() - before
    assert 0 < result.wall_s <= elapsed and not result.interrupted
    assert (_info(tmp_path / "run")["status"], _info(tmp_path / "run")["step"]) == ("done", 4)
    assert BUDGET not in capsys.readouterr().out


def test_resuming_a_finished_run_takes_no_step(token_dir, tmp_path):
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=3")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text()
    again = run_tiny(token_dir, tmp_path / "run", "train.max_steps=3")
    assert (again.step, again.final, again.interrupted) == (3, {}, False)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == lines


@pytest.mark.parametrize("stop_after", [1, 3])
def test_stop_after_ends_at_that_step_without_a_budget_line(token_dir, tmp_path, capsys, stop_after):
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=6", f"train.stop_after={stop_after}")
    assert result.step == stop_after and not result.interrupted
    assert BUDGET not in capsys.readouterr().out


def test_the_budget_ends_the_run_when_its_fraction_reaches_one(token_dir, tmp_path, monkeypatch, capsys):
    # the clock made exact: a quarter of the budget a step, so the fraction is 1.0 at step 4
    monkeypatch.setattr(loop._Trainer, "time_frac", lambda self: self.step / 4)
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=10", "train.max_minutes=1")
    assert result.step == 4
    assert "time budget of 1 min reached at step 4 of 10" in capsys.readouterr().out.splitlines()
    assert _info(tmp_path / "run")["status"] == "done"


def test_logging_happens_every_log_every_steps_at_evaluations_and_at_the_end(token_dir, tmp_path):
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=7", "train.log_every=5", "train.eval_every=3")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [3, 5, 6, 7]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6, 7]


def ctrl_c_at(step: int):
    """next_token_loss, sending this process SIGINT during optimizer step `step` (the loop stops after it)."""
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += model.training
        if model.training and calls["n"] == step:
            signal.raise_signal(signal.SIGINT)
        return next_token_loss(model, batch)

    return loss_fn


def test_a_signal_during_the_last_step_still_ends_the_run_as_done(token_dir, tmp_path):
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=3", loss_fn=ctrl_c_at(3))
    assert result.step == 3 and not result.interrupted and _info(tmp_path / "run")["status"] == "done"


def test_a_signal_before_the_end_interrupts(token_dir, tmp_path, capsys):
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=5", loss_fn=ctrl_c_at(2))
    assert result.step == 2 and result.interrupted
    assert (_info(tmp_path / "run")["status"], _info(tmp_path / "run")["step"]) == ("interrupted", 2)
    assert "stopped at step 2; continue with --resume" in capsys.readouterr().out.splitlines()


def test_the_progress_bar_counts_steps_from_where_a_run_resumes(token_dir, tmp_path, capsys, monkeypatch):
    # no tqdm monitor thread: a process forked while it holds tqdm's lock (mutmut forks per mutant) would hang
    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=6", "train.stop_after=2")
    assert capsys.readouterr().err == ""                    # train.progress=false: no bar
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=6", "train.progress=true")
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    shown = [line for line in bar if "/6" in line]
    assert shown[0].lstrip().startswith("33%") and " 2/6 " in shown[0]      # starts at the resumed step
    assert " 6/6 " in shown[-1] and "step" in shown[-1] and "it/s" not in shown[-1]
    record = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert f"loss={record['loss']:.3f}" in shown[-1] and f"val={record['val_loss']:.3f}" in shown[-1]
    assert f"tok_s={record['tokens_per_s']:,.0f}" in shown[-1]
