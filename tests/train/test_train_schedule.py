"""Learning-rate schedules: warmup, cosine, warmup-stable-decay, constant."""

import math

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


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_past_the_last_step_or_the_time_budget_stays_at_min_lr(schedule):
    cfg = TrainConfig(max_steps=200, warmup_steps=20, max_lr=1.0, min_lr=0.1, schedule=schedule)
    assert lr_at(250, cfg) == pytest.approx(0.1)             # beyond max_steps: no rebound
    assert lr_at(5, cfg, time_frac=1.3) == pytest.approx(0.1)  # time budget spent: the clock that is further wins
    # half the time used at step 5 = step 100 of 200 on the schedule's clock
    assert lr_at(5, cfg, time_frac=0.5) == pytest.approx(lr_at(100, cfg))


def test_cosine_follows_the_formula_at_every_step():
    cfg = TrainConfig(max_steps=50, warmup_steps=5, max_lr=2.0, min_lr=0.2, schedule="cosine")
    for s in range(5, 50):
        expected = 0.2 + 0.5 * (1 + math.cos(math.pi * (s - 5) / 44)) * 1.8
        assert lr_at(s, cfg) == pytest.approx(expected, rel=1e-12)


def test_wsd_with_a_one_step_decay_window_holds_the_peak_past_the_end():
    # decay_start = 10 - round(0.1 * 10) = 9 = the last step: nothing is left to decay over.
    cfg = TrainConfig(max_steps=10, warmup_steps=2, max_lr=1.0, min_lr=0.1, schedule="wsd", decay_frac=0.1)
    assert [lr_at(s, cfg) for s in (2, 9, 12)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_no_room_after_warmup_holds_the_peak(schedule):
    # max_steps = warmup_steps + 1: the last step is the first after warmup; there is nothing to decay over.
    cfg = TrainConfig(max_steps=11, warmup_steps=10, max_lr=1.0, min_lr=0.1, schedule=schedule)
    assert lr_at(10, cfg) == 1.0
