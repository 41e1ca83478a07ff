"""The reward model's loss pieces against plain references: Bradley–Terry as the written formula on
random scores, the last counted target found by a loop, and `reward_loss` equal to scoring each row
alone. Fast on purpose: mutation testing (bench/mutation.py) runs this file once per mutant."""

from __future__ import annotations

import math

import pytest
import torch
from align_helpers import tiny_model

from scratchllm.align.reward import bradley_terry, last_token_lengths, reward_loss
from scratchllm.model.heads import RewardModel


def test_bradley_terry_on_random_scores_equals_the_formula_and_its_gradient():
    g = torch.Generator().manual_seed(0)
    chosen = (torch.randn(9, generator=g, dtype=torch.float64) * 2).requires_grad_()
    rejected = torch.randn(9, generator=g, dtype=torch.float64) * 2
    loss, metrics = bradley_terry(chosen, rejected)
    loss.backward()
    d = (chosen - rejected).tolist()
    assert loss.item() == pytest.approx(sum(math.log1p(math.exp(-x)) for x in d) / 9, rel=1e-12)
    # d/dc of mean −log σ(c − r) = −σ(r − c) / n
    assert chosen.grad.tolist() == pytest.approx([-1 / (1 + math.exp(x)) / 9 for x in d], rel=1e-12)
    assert metrics["accuracy"].item() == pytest.approx(sum(x > 0 for x in d) / 9)
    assert metrics["margin"].item() == pytest.approx(sum(d) / 9, rel=1e-12) and not metrics["margin"].requires_grad


def test_last_token_lengths_is_one_past_the_last_counted_target():
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 50, (6, 9), generator=g)
    targets[torch.rand(6, 9, generator=g) < 0.4] = -100       # prompts and padding, anywhere
    targets[4] = -100                                         # a row with nothing counted
    targets[5, -1] = 7                                        # a row counted to its very end
    want = [max([t + 1 for t in range(9) if targets[b, t] != -100], default=0) for b in range(6)]
    assert last_token_lengths(targets).tolist() == want
    assert last_token_lengths(targets.to("meta")).device.type == "meta"     # computed where the batch is


def test_reward_loss_is_bradley_terry_on_each_row_scored_alone():
    torch.manual_seed(2)
    rm = RewardModel(tiny_model()).eval()
    torch.nn.init.normal_(rm.head.weight)
    inputs = torch.randint(0, 256, (4, 10))
    targets = torch.full((4, 10), -100)
    ends = [7, 10, 4, 9]                                      # 2 pairs: rows 0, 1 chosen; 2, 3 rejected
    for b, end in enumerate(ends):
        targets[b, 2:end] = inputs[b, 2:end]
    loss, metrics = reward_loss(rm, {"inputs": inputs, "targets": targets})
    with torch.no_grad():
        alone = torch.stack([rm(inputs[b:b + 1, :end])[0] for b, end in enumerate(ends)])
    want, want_metrics = bradley_terry(alone[:2], alone[2:])
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert metrics["margin"].item() == pytest.approx(want_metrics["margin"].item(), rel=1e-5, abs=1e-6)
    assert metrics["accuracy"].item() == want_metrics["accuracy"].item() and metrics["tokens"] == 2
