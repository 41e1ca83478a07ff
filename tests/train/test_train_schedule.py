"""Learning-rate schedules: warmup, cosine, warmup-stable-decay, constant."""

import pytest

from scratchllm.train.config import TrainConfig
from scratchllm.train.schedule import lr_at


def _curve(**kw):
    cfg = TrainConfig(max_steps=200, warmup_steps=20, max_lr=1.0, min_lr=0.1, **kw)
    return [lr_at(s, cfg) for s in range(cfg.max_steps)]


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
def test_linear_warmup_to_the_peak(schedule):
    lrs = _curve(schedule=schedule)
    assert lrs[:20] == pytest.approx([(s + 1) / 20 for s in range(20)])


def test_cosine_decays_monotonically_to_min_lr_through_the_midpoint():
    lrs = _curve(schedule="cosine")
    tail = lrs[20:]
    assert all(a >= b for a, b in zip(tail, tail[1:]))
    assert lrs[-1] == pytest.approx(0.1)
    mid = 20 + (199 - 20) / 2
    assert lr_at(int(mid), TrainConfig(max_steps=200, warmup_steps=20, max_lr=1.0, min_lr=0.1)) == pytest.approx(0.55, abs=0.01)


def test_wsd_is_flat_then_linear_down_over_the_last_fraction():
    lrs = _curve(schedule="wsd", decay_frac=0.25)
    assert lrs[20:151] == pytest.approx([1.0] * 131)
    decay = lrs[150:]
    steps = [a - b for a, b in zip(decay, decay[1:])]
    assert steps == pytest.approx([steps[0]] * len(steps))  # a straight line
    assert lrs[-1] == pytest.approx(0.1)


def test_constant_stays_at_the_peak():
    assert _curve(schedule="constant")[20:] == pytest.approx([1.0] * 180)
