"""The formulas of on-policy RL for language models (PPO and GRPO), on plain tensors.

Everything here is a pure function of tensors, written as the papers write it, so a test can
check each against a hand computation; `ppo.py` and `grpo.py` bind them to models and runs.
Shapes: B rows (sampled replies), T reply positions, `mask` [B, T] 1 on real reply tokens.

- `token_logps(logits, tokens)`: log π(token) per position, in fp32.
- `k3_kl(logp, ref_logp)`: the per-token KL estimator of Schulman (2020), as GRPO uses it:
  π_ref/π − log(π_ref/π) − 1, unbiased for KL(π‖π_ref) under samples of π, and ≥ 0 always.
- `group_advantages(rewards, G)`: GRPO's A_i = (r_i − mean(group)) / (std(group) + eps).
- `clipped_surrogate(logp, old_logp, adv, ε)`: −min(ρA, clip(ρ, 1−ε, 1+ε)A) per token, and
  where the clipped branch was taken (PPO-clip, Schulman et al. 2017).
- `gae(rewards, values, mask, γ, λ)`: generalized advantage estimation (Schulman et al. 2016).
- `whiten(x, mask)`: zero mean, unit variance over the real tokens.
- `clipped_value_loss`: ½·max((V − R)², (clip(V, V_old ± ε) − R)²), PPO2's value clipping.
- `AdaptiveKL`: Ziegler et al. (2019)'s controller, which moves β toward a target KL.

>>> import torch
>>> [round(a, 3) for a in group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), group_size=2).tolist()]
[0.707, -0.707, -0.707, 0.707]
>>> float(k3_kl(torch.tensor([-1.0]), torch.tensor([-1.0])))
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def token_logps(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log π(tokens) [B, T] from logits [B, T, V]; fp32 (a bf16 log-softmax loses the ratio's precision)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(π(·)) [B, T] in nats at every position."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (over all of them, or along `dim`)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π‖π_ref) estimate exp(ref − logp) − (ref − logp) − 1 (≥ 0; 0 where they agree)."""
    diff = ref_logp - logp
    return torch.exp(diff) - diff - 1


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's advantages [B]: each reward standardised within its group of `group_size` consecutive
    samples of one prompt (std with Bessel's correction, as the paper's reference code). A group
    whose replies all score the same gets 0: it says nothing about which reply is better."""
    groups = rewards.float().view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    return ((groups - mean) / (std + eps)).view(-1)


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token loss −min(ρA, clip(ρ)A), bool where the clipped term was the smaller one), ρ = π/π_old.

    `advantages` broadcasts: [B, 1] for one advantage per reply (GRPO), [B, T] per token (PPO).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantages
    return -torch.minimum(unclipped, clipped), clipped < unclipped


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) [B, T] for per-token rewards and values on right-padded replies.

    δ_t = r_t + γ·V_{t+1} − V_t (V past the reply's last token is 0: the episode ended there),
    A_t = δ_t + γλ·A_{t+1}, returns R_t = A_t + V_t. Padding positions get 0.
    """
    mask = mask.to(values.dtype)
    values = values * mask
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
        next_value = values[:, t]
    return advantages, (advantages + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """x standardised over the masked positions (unbiased variance, as the RLHF PPO recipes)."""
    m = mask.to(x.dtype)
    mean = (x * m).sum() / m.sum().clamp(min=1)
    var = ((x - mean) ** 2 * m).sum() / (m.sum() - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * m


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token ½·max((V−R)², (V_old + clip(V−V_old, ±ε) − R)²), bool where the clipped term won)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    plain, held = (values - returns) ** 2, (clipped - returns) ** 2
    return 0.5 * torch.maximum(plain, held), held > plain


@dataclass
class AdaptiveKL:
    """β of the KL penalty. With `target` set, Ziegler et al.'s proportional controller:
    e = clip(KL/target − 1, −0.2, 0.2), β ← β·(1 + e·n/horizon) after n samples; else fixed."""

    beta: float
    target: float = 0.0       # 0 = a fixed β
    horizon: int = 10_000

    def update(self, kl: float, n_samples: int) -> None:
        if self.target > 0:
            error = min(max(kl / self.target - 1, -0.2), 0.2)
            self.beta *= 1 + error * n_samples / self.horizon
