"""What the loop records and restores around the steps: tokens and training time across a resume,
val_loss in the checkpoints of evaluation steps only, samples and their trackers, the time budget's
fraction, the asked dtype, the fused optimizer's non-finite handling, and the sums over ranks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from runs_helpers import run_tiny, tiny_config
from test_health import fused_adamw, nan_at

from scratchllm.data.loader import TokenLoader
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import distributed, loop
from scratchllm.train.config import TrainConfig
from scratchllm.train.step import next_token_loss
from scratchllm.train.tracking import read_metrics


def test_a_resumed_run_keeps_counting_tokens_and_training_time(token_dir, tmp_path):
    straight = run_tiny(token_dir, tmp_path / "a", "train.max_steps=6")
    run_tiny(token_dir, tmp_path / "b", "train.max_steps=6", "train.stop_after=3")
    first = ckpt.find_checkpoint(tmp_path / "b").state
    assert first["tokens"] == 3 * 4 * 16 and first["train_seconds"] > 0
    resumed = run_tiny(token_dir, tmp_path / "b", "train.max_steps=6")
    assert resumed.tokens == straight.tokens == 6 * 4 * 16
    assert [r["tokens"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl")] == [64 * s for s in range(1, 7)]
    assert ckpt.find_checkpoint(tmp_path / "b").state["train_seconds"] > first["train_seconds"]


def test_restore_takes_the_saved_step_tokens_and_training_time(token_dir, tmp_path):
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=6", "train.stop_after=2")
    saved = ckpt.find_checkpoint(tmp_path / "run").state
    cfg = tiny_config("train.max_steps=6")
    trainer = loop._Trainer(Transformer(cfg.model), cfg, iter([]), tmp_path / "run", next_token_loss, None, None)
    trainer.restore()
    assert (trainer.step, trainer.tokens, trainer.seconds_before) == (2, saved["tokens"], saved["train_seconds"])


def test_only_checkpoints_of_evaluation_steps_carry_their_val_loss(token_dir, tmp_path):
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=7", "train.checkpoint_every=1", "train.eval_every=3",
             "train.keep_checkpoints=10")
    val = {r["step"]: r["val_loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val_loss" in r}
    assert list(val) == [3, 6, 7]
    for step in range(1, 8):
        state = json.loads((ckpt.step_dir(tmp_path / "run", step) / "state.json").read_text())
        assert state.get("val_loss") == val.get(step), step


class _Recorder:
    """A tracker that keeps what it is given."""

    def __init__(self):
        self.texts, self.records = [], []

    def text(self, name, step, text):
        self.texts.append((name, step, text))

    def log(self, record):
        self.records.append(record)

    def close(self):
        pass


def test_samples_come_from_the_model_and_reach_the_trackers(token_dir, tmp_path, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(loop, "open_trackers", lambda *args: [recorder])
    seen = []

    def sample(model):
        seen.append((model.training, type(model).__name__))
        return f"é{len(seen)}"           # non-ASCII: samples.jsonl is UTF-8 JSON

    run_tiny(token_dir, tmp_path / "run", "train.max_steps=4", "train.sample_every=2", sample=sample)
    lines = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text("utf-8").splitlines()]
    assert lines == [{"step": 2, "text": "é1"}, {"step": 4, "text": "é2"}]
    assert recorder.texts == [("sample", 2, "é1"), ("sample", 4, "é2")]
    assert seen == [(False, "Transformer")] * 2           # the model itself, in eval mode


def test_the_time_budget_fraction_counts_earlier_segments(token_dir, tmp_path, monkeypatch):
    cfg = tiny_config("train.max_minutes=2")
    trainer = loop._Trainer(Transformer(cfg.model), cfg, iter([]), tmp_path, next_token_loss, None, None)
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)         # a stopped clock: no time passes
    trainer.seconds_before, trainer.started = 30.0, 1000.0 - 15.0
    assert trainer.time_frac() == pytest.approx(45 / 120)
    trainer.tc.max_minutes = 0
    assert trainer.time_frac() == 0.0


def test_the_asked_dtype_reaches_the_forward(token_dir, tmp_path):
    first = {}
    for dtype in ("float32", "bfloat16"):
        # lr 0: the step leaves the weights as they were, so validation sees the same model in both runs
        run_tiny(token_dir, tmp_path / dtype, "train.max_steps=2", "train.eval_every=1", "train.max_lr=0",
                 "train.min_lr=0", f"train.dtype={dtype}")
        first[dtype] = read_metrics(tmp_path / dtype / "metrics.jsonl")[0]
    for key in ("loss", "val_loss"):                       # the step's forward and validation's
        assert first["float32"][key] != first["bfloat16"][key]
        assert abs(first["float32"][key] - first["bfloat16"][key]) < 0.05       # the same model, rounded


def test_a_fused_optimizer_still_stops_on_a_nonfinite_step(token_dir, tmp_path):
    with pytest.raises(UserError) as err:
        run_tiny(token_dir, tmp_path / "run", "train.max_steps=6", "train.nonfinite=stop", loss_fn=nan_at({3}),
                 make_optimizer=fused_adamw)
    path = ckpt.find_checkpoint(tmp_path / "run").path
    assert str(err.value) == (f"the loss or gradient became non-finite at step 3; the run before it is saved in {path}: "
                              "lower train.max_lr or raise train.warmup_steps, then --resume (or set "
                              "train.nonfinite=skip to drop such steps)")
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert (info["status"], info["reason"]) == ("stopped", "non-finite loss or gradient at step 3")
    assert ckpt.find_checkpoint(tmp_path / "run").step == 2


@pytest.mark.parametrize("fused", [False, True])
def test_a_nonfinite_gradient_under_a_finite_loss_is_skipped(token_dir, tmp_path, capsys, fused):
    def nan_grad(model, batch):
        loss = next_token_loss(model, batch)
        if model.training and nan_grad.calls == 1:
            w = model.lm_head.weight
            loss = loss + torch.sqrt(((w - w.detach()) ** 2).sum())    # adds 0, but d sqrt(u)/du at 0 is inf: NaN grads
        nan_grad.calls += model.training
        return loss

    nan_grad.calls = 0
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=3", loss_fn=nan_grad,
                      make_optimizer=fused_adamw if fused else None)
    assert result.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in ckpt.load_run(tmp_path / "run").model.parameters())
    said = "step 2: non-finite loss or gradient, update skipped (1 so far)" if not fused else \
        "steps up to 2: 1 non-finite update(s) skipped (1 so far)"
    assert said in capsys.readouterr().out.splitlines()


def test_rates_are_tokens_over_seconds_and_mfu_from_the_models_flops():
    model = Transformer(tiny_config().model)
    trainer = SimpleNamespace(device=torch.device("cpu"), peak=1e12, raw=model)
    rates = loop._Trainer._rates(trainer, 1000, 0.5, 16)
    assert rates["tokens_per_s"] == 2000.0
    assert rates["mfu"] == loop.mfu(model.flops_per_token(16), 2000.0, 1e12) and rates["mfu"] > 0
    trainer.peak = None                                   # a device without a known peak: no mfu
    assert "mfu" not in loop._Trainer._rates(trainer, 1000, 0.5, 16)


def _ranks(monkeypatch, size: int, replicas: int) -> SimpleNamespace:
    """A world of `size` ranks in which every rank holds the same numbers (so a sum is size times each)."""
    monkeypatch.setattr(distributed, "all_sum", lambda value: torch.as_tensor(value, dtype=torch.float64) * size)
    return SimpleNamespace(size=size, replicas=replicas)


def test_interval_sums_are_averaged_over_ranks_and_tokens_over_replicas(monkeypatch):
    world = _ranks(monkeypatch, 4, 2)            # 2 data replicas of 2 tensor-parallel ranks
    interval = loop._Interval()
    interval.add(torch.tensor(2.0), 64, {"acc": torch.tensor(0.5)})
    interval.reduce_over_ranks(world)
    assert (float(interval.loss), float(interval.tokens), float(interval.metrics["acc"])) == (2.0, 128.0, 0.5)


@pytest.mark.parametrize("size, replicas, total", [(2, 1, 1128), (4, 2, 1128), (1, 1, 1064)])
def test_the_token_count_is_summed_over_data_ranks(monkeypatch, size, replicas, total):
    trainer = SimpleNamespace(world=_ranks(monkeypatch, size, replicas), unsynced_tokens=64, tokens=1000)
    assert loop._Trainer.sync_tokens(trainer) == total and trainer.unsynced_tokens == 0


def test_an_interval_sums_its_steps_and_averages_them():
    interval = loop._Interval()
    assert (interval.mean_loss(), interval.tokens, interval.mean_metrics()) == (0.0, 0, {})
    interval.add(torch.tensor(3.0), 64, {"acc": torch.tensor(0.25)})
    assert (interval.mean_loss(), interval.tokens, interval.mean_metrics()) == (3.0, 64, {"acc": 0.25})
    interval.add(torch.tensor(5.0), 32, {"acc": torch.tensor(0.75)})
    assert (interval.mean_loss(), interval.tokens, interval.mean_metrics()) == (4.0, 96, {"acc": 0.5})


def test_records_reach_the_trackers_and_throughput_is_per_interval(token_dir, tmp_path, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(loop, "open_trackers", lambda *args: [recorder])
    result = run_tiny(token_dir, tmp_path / "run", "train.max_steps=3")
    assert recorder.records == read_metrics(tmp_path / "run" / "metrics.jsonl")
    # each interval is part of the run, so its rate is at least the run's average
    assert all(r["tokens_per_s"] >= 64 / result.wall_s for r in recorder.records)


def test_selective_checkpointing_reaches_the_model(token_dir, tmp_path):
    cfg = tiny_config("train.gradient_checkpointing=true", "train.checkpoint_blocks_every=2")
    model = Transformer(cfg.model)
    loop._Trainer(model, cfg, iter([]), tmp_path, next_token_loss, None, None)
    assert model.gradient_checkpointing == 2


def test_train_opens_the_configured_trackers_with_the_run_info(token_dir, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(loop, "open_trackers", lambda *args: opened.append(args) or [])
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=1", "track.backends=tensorboard,mlflow", "train.seed=11")
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    # the trackers get what run_info.json held at the start (the end adds the status and the step)
    assert opened == [("tensorboard,mlflow", tmp_path / "run",
                       {**{k: v for k, v in info.items() if k != "step"}, "status": "running"})]
    assert (info["seed"], info["device"], info["data_manifest"]) == (11, "cpu", str(token_dir / "meta.json"))
    assert info["data_manifest_sha256"]


def test_a_config_without_a_track_table_logs_to_jsonl(token_dir, tmp_path, monkeypatch):
    @dataclass
    class Untracked:            # as finetune's and DPO's configs: no [track] (nor [parallel]) table
        model: ModelConfig
        train: TrainConfig

    opened = []
    monkeypatch.setattr(loop, "open_trackers", lambda *args: opened.append(args[0]) or [])
    cfg = tiny_config("train.max_steps=1")
    run = Untracked(cfg.model, cfg.train)
    loop.train(Transformer(cfg.model), run, TokenLoader(token_dir, "train", 16, 4, seed=1), tmp_path / "run", quiet=True)
    assert opened == ["jsonl"]


def test_train_says_its_config_unless_quiet_and_makes_nested_directories(token_dir, tmp_path, capsys):
    cfg = tiny_config("train.max_steps=1")
    out = tmp_path / "a" / "b" / "run"
    loop.train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4, seed=1), out)
    text = (out / "config.toml").read_text()
    assert capsys.readouterr().out.startswith(f"# resolved config (saved to {out / 'config.toml'})\n{text}")
    loop.train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4, seed=1), tmp_path / "quiet",
               quiet=True)
    assert "resolved config" not in capsys.readouterr().out


def test_a_new_run_drops_the_metrics_of_an_attempt_that_never_saved(token_dir, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 99, "loss": 1.0}\n')
    run_tiny(token_dir, tmp_path / "run", "train.max_steps=2")
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_compile_wraps_the_loss_with_the_model_and_a_new_run_starts_its_clock_at_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)         # a stopped clock: no time passes
    cfg = tiny_config("train.compile=true", "train.max_minutes=1")
    trainer = loop._Trainer(Transformer(cfg.model), cfg, iter([]), tmp_path, next_token_loss, None, None)
    assert trainer.loss is not next_token_loss and trainer.loss._torchdynamo_orig_callable is next_token_loss
    assert trainer.time_frac() == 0.0                  # no earlier segment: 0 s before, not 1
    plain = loop._Trainer(Transformer(cfg.model), tiny_config(), iter([]), tmp_path / "b", next_token_loss, None, None)
    assert plain.loss is next_token_loss
