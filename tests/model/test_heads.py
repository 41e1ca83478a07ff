"""Scalar heads read the final residual stream after the final norm: with a head copied from one
row of the LM head, a reward is that token's logit at the row's last real position, and a value
is that logit at every position (an independent reference: the model's own logits)."""

from __future__ import annotations

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.heads import PolicyValueModel, RewardModel
from scratchllm.model.transformer import Transformer

TOKEN = 5


def _model() -> Transformer:
    torch.manual_seed(0)          # three blocks, so the first, a middle and the last stream all differ
    return Transformer(ModelConfig(vocab_size=40, block_size=12, n_layer=3, n_head=2, n_embd=16)).eval()


def _copy_lm_head_row(head: torch.nn.Linear, model: Transformer) -> None:
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight[TOKEN:TOKEN + 1])
        head.bias.zero_()                      # the LM head has no bias


def test_a_reward_is_the_head_on_the_last_real_tokens_final_stream():
    model = _model()
    reward = RewardModel(model)
    _copy_lm_head_row(reward.head, model)
    idx = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([10, 4, 1])
    logits = model(idx)
    want = logits[torch.arange(3), lengths - 1, TOKEN]
    assert torch.allclose(reward(idx, lengths), want, atol=1e-5)
    assert torch.allclose(reward(idx), logits[:, -1, TOKEN], atol=1e-5)     # no lengths: every row is full
    assert reward(idx).shape == (3,) and reward(idx).dtype == torch.float32


def test_a_value_is_the_head_on_every_positions_final_stream():
    model = _model()
    policy = PolicyValueModel(model)
    _copy_lm_head_row(policy.value_head, model)
    idx = torch.randint(0, 40, (2, 7), generator=torch.Generator().manual_seed(2))
    logits, values = policy(idx)
    assert torch.equal(logits, model(idx))
    assert values.shape == (2, 7) and torch.allclose(values, logits[..., TOKEN], atol=1e-5)
