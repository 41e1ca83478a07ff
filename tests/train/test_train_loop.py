"""The loop: accumulation equivalence, exact resume across Ctrl-C, metrics, learning."""

import json
import math
import os
import signal

import pytest
import torch

from train_helpers import tiny_config
from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import seed_everything
from scratchllm.train.loop import train
from scratchllm.train.step import accumulate_gradients, next_token_loss


def _model(cfg, seed=0):
    seed_everything(seed)
    return Transformer(cfg.model)


def test_accumulation_k_micro_batches_equal_one_big_batch(token_dir):
    cfg = tiny_config()
    x, y = next(TokenLoader(token_dir, "train", 16, batch_size=8, seed=3))
    big, small = _model(cfg), _model(cfg)
    big.load_state_dict(small.state_dict())
    device = torch.device("cpu")
    loss_big = accumulate_gradients(big, [(x, y)], next_token_loss, device, "float32")
    micro = [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)]
    loss_small = accumulate_gradients(small, micro, next_token_loss, device, "float32")
    assert abs(loss_big.item() - loss_small.item()) <= 1e-6
    for (name, a), b in zip(big.named_parameters(), small.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=0), name


class _InterruptAfter:
    """A batch source that delivers SIGINT to this process after `n` batches, as Ctrl-C would."""

    def __init__(self, loader, n):
        self.loader, self.n = loader, n

    def __next__(self):
        self.n -= 1
        if self.n == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return next(self.loader)

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ctrl_c_then_resume_gives_bitwise_the_same_losses(token_dir, tmp_path):
    cfg = tiny_config("model.dropout=0.1", "train.grad_accum=2")  # dropout: the torch RNG must resume too
    val = window_batches(val_windows(token_dir, 16, 8), 4)

    def run(out, source, resume=False, seed=0):
        return train(_model(cfg, seed), cfg, source, out, val_batches=val, resume=resume, quiet=True)

    straight = run(tmp_path / "a", TokenLoader(token_dir, "train", 16, 4, seed=1))
    first = run(tmp_path / "b", _InterruptAfter(TokenLoader(token_dir, "train", 16, 4, seed=1), 2 * 5))
    assert first.interrupted and first.step == 5
    # A fresh process would build a new model and loader; both must be overwritten by the checkpoint.
    second = run(tmp_path / "b", TokenLoader(token_dir, "train", 16, 4, seed=99), resume=True, seed=7)
    assert second.step == straight.step == 12
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    assert second.final["val_loss"] == straight.final["val_loss"]


def test_metrics_and_learning(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=40", "train.eval_every=20")
    val = window_batches(val_windows(token_dir, 16, 8), 4)
    result = train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path, val_batches=val,
                   tokens_per_byte=0.5, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 41))
    assert {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "peak_mem_mb"} <= set(records[0])
    last = records[-1]
    assert last["val_bpb"] == pytest.approx(last["val_loss"] / 0.6931471805599453 * 0.5)
    assert last["tokens"] == 40 * 4 * 16 == result.tokens
    assert last["val_loss"] < math.log(64) - 1.0  # well below uniform guessing: the structure was learned
    assert (tmp_path / "config.toml").is_file()


def test_refuses_to_overwrite_a_run_and_to_resume_nothing(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=2")
    train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path / "r", quiet=True)
    with pytest.raises(UserError, match="--resume"):
        train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path / "r", quiet=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path / "new", resume=True, quiet=True)


def test_gradient_checkpointing_gives_the_same_step(token_dir, tmp_path):
    plain, ckpt = tiny_config("train.max_steps=3"), tiny_config("train.max_steps=3", "train.gradient_checkpointing=true")
    a = train(_model(plain), plain, TokenLoader(token_dir, "train", 16, 4), tmp_path / "a", quiet=True)
    b = train(_model(ckpt), ckpt, TokenLoader(token_dir, "train", 16, 4), tmp_path / "b", quiet=True)
    assert a.final["loss"] == pytest.approx(b.final["loss"], abs=1e-5)


def test_time_budget_ends_the_run_early_with_a_decayed_lr(token_dir, tmp_path):
    cfg = tiny_config("train.max_steps=100000", "train.max_minutes=0.02", "train.warmup_steps=0")
    val = window_batches(val_windows(token_dir, 16, 8), 4)
    result = train(_model(cfg), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path, val_batches=val, quiet=True)
    assert 1 < result.step < 100000 and not result.interrupted
    assert "val_loss" in result.final
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lrs[-1] < 0.2 * cfg.train.max_lr and lrs[-1] < lrs[0]
