"""Proof that nothing is lost: a training process killed with SIGKILL at random moments (checkpointing
every step, so many kills land inside a save) and resumed each time ends with the losses of an
uninterrupted run, bit for bit; no kill leaves a checkpoint that loads but differs from the
uninterrupted run's at that step; SIGINT and SIGTERM save and exit cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scratchllm.train import checkpoint as ckpt
from scratchllm.train.run_info import read_run_info
from scratchllm.train.tracking import read_metrics

SCRIPT = Path(__file__).with_name("runs_helpers.py")
STEPS = 40
ARGS = [f"train.max_steps={STEPS}", "train.checkpoint_every=1", "train.eval_every=10"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def start(token_dir: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), str(token_dir), str(out), *ARGS, *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lines(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_progress(proc: subprocess.Popen, out: Path, timeout: float = 60) -> bool:
    """Until the child logs a new step (True) or exits (False)."""
    before, deadline = lines(out), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if lines(out) > before:
            return True
        time.sleep(0.005)
    raise AssertionError("the training child made no progress")


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(ckpt.step_dir(run, step) / "model.safetensors")


@pytest.fixture(scope="module")
def reference(token_dir, tmp_path_factory):
    """The uninterrupted run, every checkpoint kept (the truth each kill is checked against)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    proc = start(token_dir, out, f"train.keep_checkpoints={STEPS}")
    assert proc.wait(120) == 0, proc.stdout.read()
    return out


@pytest.mark.slow  # 12 child processes, each importing torch: ~1-2 min on 2 busy cores (6 min seen under load)
def test_sigkill_at_random_moments_loses_nothing(token_dir, reference, tmp_path):
    out, rng, kills = tmp_path / "run", random.Random(17), 0
    while True:
        proc = start(token_dir, out)
        if kills < 10 and wait_for_progress(proc, out):
            time.sleep(rng.uniform(0, 0.03))  # a step with its save takes ~10-30 ms: anywhere in it
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            steps = ckpt.list_steps(out)
            if steps:  # the newest checkpoint verifies and equals the uninterrupted run's at that step
                found = ckpt.find_checkpoint(out)
                got, want = weights(out, found.step), weights(reference, found.step)
                assert all(torch.equal(got[k], want[k]) for k in want), f"kill {kills}: step {found.step} differs"
            continue
        assert proc.wait(120) == 0, proc.stdout.read()
        break
    assert kills == 10
    resumed, uninterrupted = read_metrics(out / "metrics.jsonl"), read_metrics(reference / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    for key in ("loss", "grad_norm", "val_loss"):
        assert [r.get(key) for r in resumed] == [r.get(key) for r in uninterrupted], key
    final = weights(out, STEPS)
    assert all(torch.equal(final[k], v) for k, v in weights(reference, STEPS).items())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_save_and_exit_cleanly(token_dir, tmp_path, sig):
    out = tmp_path / "run"
    proc = start(token_dir, out, "train.max_steps=100000", "train.checkpoint_every=0")
    assert wait_for_progress(proc, out)
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "interrupted=True" in output and signal.Signals(sig).name in output
    logged = read_metrics(out / "metrics.jsonl")[-1]["step"]
    found = ckpt.find_checkpoint(out)  # saved, and it verifies
    assert found.step >= logged and read_run_info(out)["status"] == "interrupted"
