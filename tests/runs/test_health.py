"""Health of long runs: non-finite steps skipped or stopped with a checkpoint, spikes logged,
checkpoint retention, periodic samples (which leave the training's random numbers alone)."""

from __future__ import annotations

import json

import pytest
import torch
from runs_helpers import run_tiny

from scratchllm.errors import UserError
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.optim import make_optimizer
from scratchllm.train.step import next_token_loss
from scratchllm.train.tracking import read_metrics


def nan_at(bad_steps: set[int]):
    """next_token_loss, but NaN on the optimizer steps in `bad_steps` (grad_accum=1: one call a step)."""
    calls = {"n": 0}

    def loss_fn(model, batch):
        loss = next_token_loss(model, batch)
        if model.training:
            calls["n"] += 1
            if calls["n"] in bad_steps:
                return loss * float("nan")
        return loss

    return loss_fn


def fused_adamw(model, tc, fused=True):
    """The loop's AdamW groups in torch's fused kernel (CUDA's default; it runs on the CPU too)."""
    groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in make_optimizer(model, tc).param_groups]
    return torch.optim.AdamW(groups, lr=tc.max_lr, betas=(tc.beta1, tc.beta2), eps=tc.eps, fused=fused)


def checked_adamw(model, tc):
    return fused_adamw(model, tc, fused=False)


def test_nonfinite_step_is_skipped_and_the_weights_stay_finite(token_dir, tmp_path):
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=8", loss_fn=nan_at({3, 5}))
    assert result.skipped_steps == 2 and result.step == 8
    model = ckpt.load_run(tmp_path / "run").model
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["skipped_steps"] == 2


def test_the_fused_optimizer_skips_on_the_device_as_the_checked_path_does(token_dir, tmp_path):
    # The fused AdamW (CUDA's default; here on the CPU) is told found_inf instead of the loop reading the
    # loss back each step: the same steps must be dropped, step counters included, as the checked path.
    results = {}
    for fused in (False, True):
        result = run_tiny(token_dir, tmp_path / f"fused{fused}", "train.max_steps=8", loss_fn=nan_at({3, 5}),
                          make_optimizer=fused_adamw if fused else checked_adamw)
        results[fused] = result, ckpt.load_run(tmp_path / f"fused{fused}").model.state_dict()
        assert result.skipped_steps == 2
        assert read_metrics(tmp_path / f"fused{fused}" / "metrics.jsonl")[-1]["skipped_steps"] == 2
    (_, checked), (_, fused) = results[False], results[True]
    for name in checked:
        torch.testing.assert_close(fused[name], checked[name], atol=1e-6, rtol=1e-5)


def test_nonfinite_stop_saves_the_run_before_it(token_dir, tmp_path):
    with pytest.raises(UserError, match="non-finite at step 4.*--resume"):
        run_tiny(token_dir, tmp_path / "run", "train.max_steps=8", "train.nonfinite=stop", loss_fn=nan_at({4}))
    found = ckpt.find_checkpoint(tmp_path / "run")
    assert found.step == 3
    clean = run_tiny(token_dir, tmp_path / "clean", "train.max_steps=8", "train.checkpoint_every=1",
                     "train.keep_checkpoints=8")
    assert clean.step == 8
    got = ckpt.load_run(tmp_path / "run").model.state_dict()
    want = ckpt.load_run(tmp_path / "clean", step=3).model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)  # the three good steps, untouched by the fourth
    assert json.loads((tmp_path / "run" / "run_info.json").read_text())["status"] == "stopped"


def test_loss_spike_is_logged_and_said(token_dir, tmp_path, capsys):
    def spiky(model, batch):
        loss = next_token_loss(model, batch)
        spiky.n += model.training
        return loss * 50 if model.training and spiky.n == 9 else loss

    spiky.n = 0
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=10", "train.grad_clip=0", loss_fn=spiky)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    flagged = {r["step"]: r["spike"] for r in records if "spike" in r}
    assert flagged == {9: ["loss", "grad_norm"]}
    said = [line for line in capsys.readouterr().out.splitlines() if "spike" in line]
    assert said == [f"step 9: spike in loss and grad_norm (loss {records[8]['loss']:.3f}, "
                    f"grad norm {records[8]['grad_norm']:.3f})"]


def test_retention_keeps_last_every_and_best(token_dir, tmp_path):
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=12", "train.checkpoint_every=1", "train.eval_every=2",
             "train.keep_checkpoints=2", "train.keep_every=5", "train.keep_best=true")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    val = {r["step"]: r["val_loss"] for r in records if "val_loss" in r}
    best = min(val, key=val.get)
    assert set(ckpt.list_steps(tmp_path / "run")) == {11, 12, 5, 10, best}


def test_samples_are_written_and_do_not_change_training(token_dir, tmp_path):
    def sample(model):
        ids = torch.multinomial(torch.ones(8), 4).tolist()  # draws random numbers on purpose
        return " ".join(map(str, ids))

    with_samples = run_tiny(token_dir, tmp_path / "a", "train.max_steps=6", "train.sample_every=2", sample=sample)
    without = run_tiny(token_dir, tmp_path / "b", "train.max_steps=6")
    lines = [json.loads(line) for line in (tmp_path / "a" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in lines] == [2, 4, 6]
    losses = [[r["loss"] for r in read_metrics(d / "metrics.jsonl")] for d in (tmp_path / "a", tmp_path / "b")]
    assert losses[0] == losses[1] and with_samples.final["loss"] == without.final["loss"]
