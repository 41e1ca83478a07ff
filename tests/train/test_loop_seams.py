"""The loop's seams: metrics from the loss function, counted tokens, per-group lr, checkpoint timing."""

import json

import pytest
import torch
import torch.nn.functional as F

from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import find_checkpoint, list_steps, load_weights, seed_everything
from scratchllm.train.loop import train
from scratchllm.train.step import accumulate_gradients, batch_tokens, evaluate
from scratchllm.train.optim import make_optimizer
from train_helpers import tiny_config


def _model(cfg):
    seed_everything(0)
    return Transformer(cfg.model)


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _masked(loader, keep_every=4):
    """Batches whose targets are -100 except every `keep_every`-th position (like an SFT prompt mask)."""
    for x, y in loader:
        y = y.clone()
        y[:, torch.arange(y.shape[1]) % keep_every != 0] = -100
        yield x, y


def _loss_with_metrics(model, batch):
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
    hit = (logits.argmax(-1) == y)[y != -100].float().mean()
    return loss, {"accuracy": hit, "constant": 3.0}


def test_metrics_of_the_loss_function_are_averaged_and_logged(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=6", "train.log_every=3", "train.eval_every=6", "train.grad_accum=2")
    val = window_batches(val_windows(token_dir, 16, 8), 4)
    train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path, loss_fn=_loss_with_metrics,
          val_batches=val, quiet=True)
    records = _records(tmp_path)
    assert [r["step"] for r in records] == [3, 6]
    assert all(r["constant"] == pytest.approx(3.0) for r in records)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    last = records[-1]
    assert last["val_constant"] == pytest.approx(3.0)
    # The validation metrics are the token-weighted mean over the fixed batches: recompute them.
    model = _model(cfg)
    load_weights(model, find_checkpoint(tmp_path))
    again = evaluate(model, val, _loss_with_metrics, torch.device("cpu"), "float32")
    assert again["loss"] == pytest.approx(last["val_loss"], abs=1e-6)
    assert again["accuracy"] == pytest.approx(last["val_accuracy"], abs=1e-6)


def test_tokens_are_the_targets_that_count(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=4", "train.log_every=2", "train.eval_every=0")
    result = train(_model(cfg), cfg, _masked(TokenLoader(token_dir, "train", 16, 4)), tmp_path, quiet=True)
    assert result.tokens == 4 * 4 * (16 // 4)              # steps × rows × kept targets per row
    assert [r["tokens"] for r in _records(tmp_path)] == [2 * 16, 4 * 16]
    x = torch.zeros(2, 5, dtype=torch.long)
    y = torch.tensor([[1, -100, 2, -100, -100], [-100] * 5])
    assert int(batch_tokens((x, y))) == 2
    assert int(batch_tokens({"input_ids": x, "labels": y})) == 2
    assert batch_tokens(x) == 10                            # no targets: every input token


def test_loss_function_can_report_its_own_token_count():
    model = torch.nn.Linear(2, 1)
    report = {}
    loss = accumulate_gradients(model, [torch.ones(3, 2), torch.ones(5, 2)],
                                lambda m, b: (m(b).pow(2).mean(), {"tokens": b.shape[0], "k": 1.0}),
                                torch.device("cpu"), "float32", report=report)
    assert report == {"tokens": 8, "k": pytest.approx(1.0)}
    assert loss.shape == ()


def test_parameter_groups_get_their_lr_multiplier(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=3", "train.warmup_steps=0", "train.log_every=1")
    model = _model(cfg)
    seen = []

    def loss_fn(m, batch):
        seen.append([g["lr"] for g in optimizer.param_groups])
        x, y = batch
        return F.cross_entropy(m(x).reshape(-1, cfg.model.vocab_size), y.reshape(-1))

    optimizer = make_optimizer(model, cfg.train)
    optimizer.param_groups[1]["lr_mult"] = 0.25
    train(model, cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path, loss_fn=loss_fn, quiet=True,
          optimizer=optimizer)
    lrs = [r["lr"] for r in _records(tmp_path)]
    for (decay_lr, no_decay_lr), lr in zip(seen, lrs):
        assert decay_lr == pytest.approx(lr) and no_decay_lr == pytest.approx(0.25 * lr)


def test_checkpoint_every_is_independent_of_log_every(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=15", "train.checkpoint_every=7", "train.log_every=5",
                      "train.eval_every=0", "train.keep_checkpoints=5")
    train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path, quiet=True)
    assert list_steps(tmp_path) == [7, 14, 15]
    state = json.loads((tmp_path / "checkpoints" / "step-000007" / "state.json").read_text())
    assert state["tokens"] == 7 * 4 * 16                    # counted up to the save, not the last log line
