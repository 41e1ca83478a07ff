"""DPO's losses and implicit rewards against the formulas (Rafailov et al. 2023; Azar et al. 2023 for IPO;
conservative DPO's label smoothing) and against TRL's DPOTrainer where TRL is importable."""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from scratchllm.align.dpo import dpo_loss, dpo_loss_fn, sequence_logps
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer

torch.manual_seed(0)
PC, PR, RC, RR = (torch.randn(6, dtype=torch.float64) * 3 - 10 for _ in range(4))


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def expected(loss_type, beta, eps, pc, pr, rc, rr):
    """(loss, d loss / d policy_chosen) from the written formulas, in plain floats."""
    d = (pc - rc) - (pr - rr)
    if loss_type == "sigmoid":
        loss = -(1 - eps) * math.log(_sig(beta * d)) - eps * math.log(_sig(-beta * d))
        grad = -(1 - eps) * beta * _sig(-beta * d) + eps * beta * _sig(beta * d)
    elif loss_type == "ipo":
        loss, grad = (d - 1 / (2 * beta)) ** 2, 2 * (d - 1 / (2 * beta))
    else:
        loss, grad = max(0.0, 1 - beta * d), (-beta if 1 - beta * d > 0 else 0.0)
    return loss, grad


@pytest.mark.parametrize("loss_type, beta, eps", [("sigmoid", 0.1, 0.0), ("sigmoid", 0.5, 0.2),
                                                  ("ipo", 0.1, 0.0), ("ipo", 1.0, 0.0), ("hinge", 0.1, 0.0),
                                                  ("hinge", 2.0, 0.0)])
def test_loss_and_gradient_equal_the_formulas(loss_type, beta, eps):
    pc, pr = PC.clone().requires_grad_(), PR.clone().requires_grad_()
    losses, chosen_r, rejected_r = dpo_loss(pc, pr, RC, RR, beta=beta, loss_type=loss_type, label_smoothing=eps)
    losses.sum().backward()
    for i in range(len(PC)):
        loss, grad = expected(loss_type, beta, eps, *(float(t[i]) for t in (PC, PR, RC, RR)))
        assert losses[i].item() == pytest.approx(loss, rel=1e-9, abs=1e-12)
        assert pc.grad[i].item() == pytest.approx(grad, rel=1e-9, abs=1e-12)
        assert pr.grad[i].item() == pytest.approx(-grad, rel=1e-9, abs=1e-12)   # Δ is antisymmetric in c, r
    # the implicit rewards: β·(log π − log π_ref), per side, carrying no gradient
    assert torch.allclose(chosen_r, beta * (PC - RC)) and torch.allclose(rejected_r, beta * (PR - RR))
    assert not chosen_r.requires_grad and not rejected_r.requires_grad


def test_sigmoid_stays_finite_far_in_the_tail():
    losses, _, _ = dpo_loss(torch.tensor([-500.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), beta=1.0)
    assert losses.item() == pytest.approx(500.0)   # −log σ(−500) = 500 + log(1 + e^−500)


def test_bad_settings_are_user_errors():
    args = (PC, PR, RC, RR)
    with pytest.raises(UserError, match="unknown DPO loss .kto.; use one of sigmoid, ipo, hinge"):
        dpo_loss(*args, loss_type="kto")
    with pytest.raises(UserError, match="label_smoothing"):
        dpo_loss(*args, label_smoothing=0.5)


# --- TRL as the oracle -----------------------------------------------------------------------

def _trl_loss(loss_type: str, beta: float, pc, pr, rc, rr, lengths):
    """TRL's DPOTrainer._compute_loss on given sequence log-probs (its model replaced by one that
    returns them), with precomputed reference log-probs, as `precompute_ref_log_probs=True` runs."""
    trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer")
    B, T = len(pc), max(lengths) + 2
    completion = torch.zeros(2 * B, T, dtype=torch.long)
    for row, n in enumerate(list(lengths) * 2):
        completion[row, 2:2 + n] = 1
    # per-token log-probs whose masked sum is each sequence's log-prob (TRL sums the rows as given)
    logps = torch.cat([pc, pr])
    shift = completion[:, 1:].to(logps.dtype)
    per_token = shift * (logps / shift.sum(dim=1)).unsqueeze(1)

    def model(**kwargs):
        zeros = torch.zeros(2 * B, T - 1)
        return SimpleNamespace(log_probs=per_token, entropy=zeros, mean_logits=zeros,
                               is_top1=torch.zeros(2 * B, T - 1, dtype=torch.bool))

    gather = lambda t: t  # noqa: E731 - one process
    fake = SimpleNamespace(model=SimpleNamespace(training=False), accelerator=SimpleNamespace(
        device=torch.device("cpu"), gather_for_metrics=gather, gather=gather), aux_loss_enabled=False,
        ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type],
        loss_weights=[1.0], beta=beta, label_smoothing=0.0, use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.ones(2 * B, T, dtype=torch.long), "attention_mask": torch.ones(2 * B, T, dtype=torch.long),
              "completion_mask": completion, "ref_chosen_logps": rc, "ref_rejected_logps": rr}
    loss = trl_dpo.DPOTrainer._compute_loss(fake, model, inputs, return_outputs=False)
    return loss, fake._metrics["eval"]


@pytest.mark.parametrize("loss_type, beta", [("sigmoid", 0.1), ("sigmoid", 0.7), ("hinge", 0.3), ("ipo", 0.1)])
def test_equals_trl(loss_type, beta):
    lengths = [3, 5, 1, 4, 2, 6]
    pc, pr = PC.float().clone().requires_grad_(), PR.float().clone().requires_grad_()
    trl_loss, trl_metrics = _trl_loss(loss_type, beta, pc, pr, RC.float(), RR.float(), lengths)
    trl_grads = torch.autograd.grad(trl_loss, (pc, pr))
    n = torch.tensor(lengths, dtype=torch.float32)
    # IPO takes length-averaged log-probs: what sequence_logps(..., average=True) gives us
    args = [t.float() / n if loss_type == "ipo" else t.float() for t in (pc, pr, RC, RR)]
    losses, chosen_r, rejected_r = dpo_loss(*args, beta=beta, loss_type=loss_type)
    ours = losses.mean()
    grads = torch.autograd.grad(ours, (pc, pr))
    assert ours.item() == pytest.approx(trl_loss.item(), rel=1e-5)
    for g, want in zip(grads, trl_grads):
        assert torch.allclose(g, want, rtol=1e-5, atol=1e-7)
    if loss_type != "ipo":   # TRL logs rewards of the summed log-probs
        assert chosen_r.mean().item() == pytest.approx(trl_metrics["rewards/chosen"][0], rel=1e-5)
        assert rejected_r.mean().item() == pytest.approx(trl_metrics["rewards/rejected"][0], rel=1e-5)
        assert (chosen_r > rejected_r).float().mean().item() == pytest.approx(trl_metrics["rewards/accuracies"][0])


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_beta_must_be_positive(beta):
    with pytest.raises(UserError, match="beta must be positive"):
        dpo_loss(PC, PR, RC, RR, beta=beta)


@pytest.mark.parametrize("eps, ok", [(-0.01, False), (0.0, True), (0.49, True), (0.5, False)])
def test_label_smoothing_range(eps, ok):
    if ok:
        dpo_loss(PC, PR, RC, RR, label_smoothing=eps)
        dpo_loss_fn(label_smoothing=eps)
    else:
        with pytest.raises(UserError, match=r"label_smoothing must be in \[0, 0.5\)"):
            dpo_loss_fn(label_smoothing=eps)


def _naive_logp(model, inputs, targets, row):
    """Σ log p(target_t | inputs_≤t) over one row's counted targets, one plain forward per row."""
    with torch.no_grad():
        logp = torch.log_softmax(model(inputs[row:row + 1])[0].double(), -1)
    return sum(logp[t, int(y)].item() for t, y in enumerate(targets[row]) if y != -100)


@pytest.mark.parametrize("loss_type, beta, eps", [("sigmoid", 0.3, 0.1), ("ipo", 0.2, 0.0), ("hinge", 0.5, 0.0)])
def test_loss_fn_on_a_batch_equals_the_loss_on_naive_log_probs(loss_type, beta, eps):
    torch.manual_seed(1)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=19, block_size=10)).eval()
    inputs = torch.randint(0, 19, (6, 8))          # 3 chosen rows, then their 3 rejected rows
    targets = torch.randint(0, 19, (6, 8))
    for row, (start, stop) in enumerate([(2, 8), (3, 5), (1, 7), (4, 8), (2, 3), (5, 8)]):
        targets[row, :start] = -100                # the prompt
        targets[row, stop:] = -100                 # right padding
    inputs[5], targets[5] = inputs[2], targets[2]   # pair 3: the same reply twice, a tie TRL does not count
    counts = (targets != -100).sum(1).double()
    ref = torch.tensor([-9.0, -4.0, -12.0, -8.5, -3.0, -12.0])
    loss, metrics = dpo_loss_fn(beta, loss_type, eps)(model, {"inputs": inputs, "targets": targets, "ref": ref})
    logps = torch.tensor([_naive_logp(model, inputs, targets, r) for r in range(6)], dtype=torch.float64)
    if loss_type == "ipo":
        logps = logps / counts                     # IPO: length-averaged log-probs
    want = [expected(loss_type, beta, eps, float(logps[i]), float(logps[i + 3]), float(ref[i]), float(ref[i + 3]))[0]
            for i in range(3)]
    assert loss.item() == pytest.approx(sum(want) / 3, rel=1e-4)
    chosen_r, rejected_r = beta * (logps[:3] - ref[:3]), beta * (logps[3:] - ref[3:])
    assert metrics["rewards/chosen"].item() == pytest.approx(chosen_r.mean().item(), rel=1e-4)
    assert metrics["rewards/rejected"].item() == pytest.approx(rejected_r.mean().item(), rel=1e-4)
    assert metrics["rewards/margins"].item() == pytest.approx((chosen_r - rejected_r).mean().item(), rel=1e-4)
    assert metrics["rewards/accuracies"].item() == pytest.approx((chosen_r > rejected_r).double().mean().item())
    assert metrics["logps/chosen"].item() == pytest.approx(logps[:3].mean().item(), rel=1e-4)
    assert metrics["logps/rejected"].item() == pytest.approx(logps[3:].mean().item(), rel=1e-4)
    assert metrics["tokens"].item() == int(counts.sum())
    assert chosen_r[2] == rejected_r[2] and metrics["rewards/accuracies"].item() < 1.0
    summed = sequence_logps(model, inputs, targets)                 # the default: summed, not averaged
    torch.testing.assert_close(summed.double(), logps * (counts if loss_type == "ipo" else 1), rtol=1e-4, atol=1e-4)


def test_defaults_are_the_papers_sigmoid_loss_with_beta_0_1():
    # beta 0.1 and no label smoothing: the DPO paper's and TRL's DPOConfig defaults.
    torch.manual_seed(2)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=19, block_size=10)).eval()
    batch = {"inputs": torch.randint(0, 19, (4, 6)), "targets": torch.randint(0, 19, (4, 6)),
             "ref": torch.tensor([-20.0, -14.0, -15.0, -22.0])}
    with torch.no_grad():
        loss, metrics = dpo_loss_fn()(model, batch)
        want, want_metrics = dpo_loss_fn(0.1, "sigmoid", 0.0)(model, batch)
    assert loss.item() == want.item() and metrics["rewards/chosen"].item() == want_metrics["rewards/chosen"].item()
    assert all(torch.equal(a, b) for a, b in zip(dpo_loss(PC, PR, RC, RR), dpo_loss(PC, PR, RC, RR, 0.1, "sigmoid", 0.0)))
