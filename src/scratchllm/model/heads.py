"""Scalar heads on the transformer: a reward model scores a whole sequence with one number.

`RewardModel(base)` reads the residual stream of the last real token (`return_hidden=True`,
then the base's own final norm), and a linear head maps it to a scalar: r(prompt, reply).
The last token because under the causal mask it is the only one that has seen the whole reply;
right-padding after it changes nothing. The head starts at zero, so every reply scores 0
before training (no arbitrary preference to unlearn).

This module knows ids and tensors only; the Bradley–Terry training lives in `align/reward.py`,
loading in `train/checkpoint.py` (kind "reward"). `score` renders a (prompt, reply) with the
chat template, the one way text reaches the model.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> rm = RewardModel(Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16)))
>>> rm(torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7]]), lengths=torch.tensor([3, 4])).tolist()   # zero head: all 0
[0.0, 0.0]
>>> logits, values = PolicyValueModel(rm.base)(torch.tensor([[1, 2, 3]]))
>>> logits.shape, values.tolist()
(torch.Size([1, 3, 64]), [[0.0, 0.0, 0.0]])

`PolicyValueModel(base)` is PPO's actor-critic: the policy's logits and, from the same residual
stream, a value V(s_t) at every position (a per-token scalar head, also zero at the start).
"""

from __future__ import annotations

import torch
from torch import nn

from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.special import render_conversation


def zero_scalar_head(width: int) -> nn.Linear:
    """A linear map to one number that starts at 0 for every input (no arbitrary preference to unlearn)."""
    head = nn.Linear(width, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class HeadedModel(nn.Module):
    """`base` (a Transformer) with a head on top: what the loop asks of a model, passed to the base."""

    def __init__(self, base: Transformer):
        super().__init__()
        self.base = base
        self.config = base.config

    @property
    def gradient_checkpointing(self) -> bool:
        return self.base.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:   # the loop sets it on the module it trains
        self.base.gradient_checkpointing = value

    def flops_per_token(self, seq_len: int | None = None) -> int:
        return self.base.flops_per_token(seq_len)


class RewardModel(HeadedModel):
    """`base` (a Transformer) + a scalar head on the final hidden state of each row's last real token."""

    checkpoint_kind = "reward"   # train/checkpoint.py's RUN_KINDS opens these

    def __init__(self, base: Transformer):
        super().__init__(base)
        self.head = zero_scalar_head(base.config.n_embd)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """idx [B, T] (right-padded), lengths [B] real tokens per row (default T) -> scores [B]."""
        _, hidden = self.base(idx, return_hidden=True)
        last = hidden[-1]                                   # after the last block, before the final norm
        if lengths is None:
            lengths = torch.full((idx.shape[0],), idx.shape[1], device=idx.device)
        rows = torch.arange(idx.shape[0], device=idx.device)
        return self.head(self.base.norm_f(last[rows, lengths - 1])).squeeze(-1).float()

    @torch.no_grad()
    def score(self, tokenizer, prompt: str | list[dict], reply: str) -> float:
        """r(prompt, reply): the prompt as text (one user turn) or chat messages, rendered with the chat template."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        ids, _ = render_conversation(tokenizer, messages + [{"role": "assistant", "content": reply}])
        # subtle: without the final <|assistant_end|>, as in training, where rows are the shifted
        # inputs of a pair (data/preference.py) and the last real input is the reply's last token.
        ids = ids[:-1][-self.config.block_size:]
        device = self.head.weight.device
        return self(torch.tensor([ids], device=device)).item()


class PolicyValueModel(HeadedModel):
    """PPO's policy and critic in one module: `base`'s logits and a value per position [B, T].

    The value head reads the same final hidden states as the logits (one forward for both);
    its checkpoints hold both, and `train/checkpoint.py` (kind "policy_value") opens them as the
    policy alone, since the critic only matters while training.
    """

    checkpoint_kind = "policy_value"

    def __init__(self, base: Transformer):
        super().__init__(base)
        self.value_head = zero_scalar_head(base.config.n_embd)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, hidden = self.base(idx, return_hidden=True)
        return logits, self.value_head(self.base.norm_f(hidden[-1])).squeeze(-1).float()
