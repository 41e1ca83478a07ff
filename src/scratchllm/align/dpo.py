"""Direct Preference Optimization (Rafailov et al. 2023) and its variants: the loss and sequence log-probs.

DPO trains the policy π directly on pairs (prompt x, chosen c, rejected r) against a frozen
reference π_ref (the SFT model). With the implicit reward of a reply y

    r(y) = β · (log π(y|x) − log π_ref(y|x))        (summed over the reply's tokens)

and Δ = (r(c) − r(r)) / β, the losses per pair are

    sigmoid       −log σ(βΔ)                                   (the paper's; Bradley–Terry on r)
    conservative  −(1−ε) log σ(βΔ) − ε log σ(−βΔ)              (sigmoid with label smoothing ε:
                                                                ε of the labels are assumed flipped)
    ipo           (Δ − 1/(2β))²  on length-averaged log-probs  (Azar et al. 2023: regresses the
                                                                margin to a target, no saturation)
    hinge         max(0, 1 − βΔ)                               (SLiC's margin loss)

`dpo_loss` is the plain function on given log-probs; `sequence_logps` turns a model and rows
into log π(y|x) over reply tokens only; `dpo_loss_fn` binds them as the one loop's loss
(`train/loop.py`), reading each batch's reference log-probs, computed once before training
(`align/dpo_run.py`) so the reference model need not stay in memory.
This module knows tensors and models only: files and runs live in `dpo_run.py`.

>>> import torch
>>> losses, chosen, rejected = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]),
...                                     torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5)
>>> chosen.item(), rejected.item(), round(losses.item(), 4)     # −log σ(0.5·(1 − (−1)))
(0.5, -0.5, 0.3133)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from scratchllm.errors import UserError

LOSS_TYPES = ("sigmoid", "ipo", "hinge")


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float = 0.1,
             loss_type: str = "sigmoid", label_smoothing: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(losses, chosen_rewards, rejected_rewards), one per pair; rewards = β·(log π − log π_ref), detached.

    For "ipo" pass length-averaged log-probs (`sequence_logps(..., average=True)`), as the paper does.
    `label_smoothing` ε > 0 turns "sigmoid" into conservative DPO; the other losses ignore it.
    """
    check_settings(beta, loss_type, label_smoothing)
    chosen_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_ratio = policy_rejected_logps - ref_rejected_logps
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        # logsigmoid rather than log(sigmoid): exact where σ underflows (βΔ very negative).
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "ipo":
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        losses = torch.relu(1 - beta * delta)
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def check_settings(beta: float, loss_type: str, label_smoothing: float) -> None:
    """A UserError for a loss, β or ε that the formulas above do not take."""
    if loss_type not in LOSS_TYPES:
        raise UserError(f"unknown DPO loss {loss_type!r}; use one of {', '.join(LOSS_TYPES)}")
    if not beta > 0:
        raise UserError(f"beta must be positive (the strength of the pull towards the reference), got {beta}")
    if not 0 <= label_smoothing < 0.5:
        raise UserError(f"label_smoothing must be in [0, 0.5) (the share of labels assumed flipped), got {label_smoothing}")


def sequence_logps(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                   average: bool = False) -> torch.Tensor:
    """log π(reply | prompt) per row [N]: the sum (or mean) of log-probs of targets other than -100."""
    logits = model(inputs)
    mask = targets != -100
    # subtle: log-softmax in fp32 even under bf16 autocast; a reply's log-prob sums hundreds of terms.
    logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    total = (logps * mask).sum(dim=-1)
    return total / mask.sum(dim=-1).clamp(min=1) if average else total


def pair_logps(model: torch.nn.Module, batch: dict, average: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) sequence log-probs of a pair batch (`data/preference.py collate_pairs`), one forward."""
    logps = sequence_logps(model, batch["inputs"], batch["targets"], average)
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


def dpo_loss_fn(beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0) -> Callable:
    """The loop's loss on a pair batch holding "ref" [2B] (reference log-probs): (mean loss, metrics).

    Metrics as TRL logs them, so curves compare: rewards/chosen, rewards/rejected,
    rewards/accuracies (share of pairs with r(c) > r(r)), rewards/margins, logps/chosen,
    logps/rejected; "tokens" counts reply tokens of both sides.
    """
    check_settings(beta, loss_type, label_smoothing)
    average = loss_type == "ipo"

    def loss_fn(model: torch.nn.Module, batch: dict):
        chosen, rejected = pair_logps(model, batch, average)
        half = chosen.shape[0]
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            chosen, rejected, batch["ref"][:half], batch["ref"][half:], beta, loss_type, label_smoothing)
        metrics = {
            "rewards/chosen": chosen_rewards.mean(), "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
            "logps/chosen": chosen.detach().mean(), "logps/rejected": rejected.detach().mean(),
            "tokens": (batch["targets"] != -100).sum(),
        }
        return losses.mean(), metrics

    return loss_fn
