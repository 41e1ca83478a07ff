"""PPO's and GRPO's formulas against hand computations written out loop by loop: GAE, the clipped
surrogate (both branches), the clipped value loss, group-normalised advantages, the k3 KL, whitening,
the adaptive KL controller."""

from __future__ import annotations

import math

import torch

from scratchllm.align.rl_math import (AdaptiveKL, clipped_surrogate, clipped_value_loss, gae, group_advantages,
                                      k3_kl, masked_mean, token_logps, whiten)


def test_gae_equals_the_recursion_written_out():
    torch.manual_seed(0)
    rewards, values = torch.randn(3, 5), torch.randn(3, 5)
    lengths = [5, 3, 1]
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths], dtype=torch.bool)
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards * mask, values, mask, gamma, lam)
    for row, n in enumerate(lengths):
        for t in range(5):
            if t >= n:
                assert adv[row, t] == 0 and ret[row, t] == 0
                continue
            # A_t = Σ_l (γλ)^l δ_{t+l}, δ_k = r_k + γ V_{k+1} − V_k, V past the reply = 0
            want = 0.0
            for k in range(t, n):
                next_v = values[row, k + 1].item() if k + 1 < n else 0.0
                delta = rewards[row, k].item() + gamma * next_v - values[row, k].item()
                want += (gamma * lam) ** (k - t) * delta
            assert math.isclose(adv[row, t].item(), want, rel_tol=1e-5, abs_tol=1e-6)
            assert math.isclose(ret[row, t].item(), want + values[row, t].item(), rel_tol=1e-5, abs_tol=1e-6)


def test_clipped_surrogate_takes_each_branch_as_the_formula_says():
    old = torch.zeros(6)
    ratios = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1, 0.9])
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0, -2.0])
    loss, clipped = clipped_surrogate(ratios.log(), old, adv, clip=0.2)
    want = [-min(r * a, min(max(r, 0.8), 1.2) * a) for r, a in zip(ratios.tolist(), adv.tolist())]
    assert torch.allclose(loss, torch.tensor(want), atol=1e-6)
    # ratio 1.5 with A>0 and 0.5 with A<0: the clipped term is the smaller (no gradient); inside ±ε never
    assert clipped.tolist() == [True, False, False, True, False, False]
    logp = ratios.log().requires_grad_()
    clipped_surrogate(logp, old, adv, 0.2)[0].sum().backward()
    assert logp.grad[0] == 0 and logp.grad[3] == 0                 # clipped: no push further
    assert torch.allclose(logp.grad[[1, 2, 4, 5]], -(ratios * adv)[[1, 2, 4, 5]])   # d(−ρA)/dlogπ = −ρA


def test_clipped_value_loss_is_the_max_of_the_two_squares():
    values, old, returns = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 1.9]), torch.tensor([2.0, 1.0, 0.0])
    loss, clipped = clipped_value_loss(values, old, returns, clip=0.2)
    want = []
    for v, o, r in zip(values.tolist(), old.tolist(), returns.tolist()):
        vc = o + min(max(v - o, -0.2), 0.2)
        want.append(0.5 * max((v - r) ** 2, (vc - r) ** 2))
    assert torch.allclose(loss, torch.tensor(want))
    assert clipped.tolist() == [True, False, False]


def test_group_advantages_standardise_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(rewards, group_size=4, eps=1e-4)
    for g in range(2):
        group = rewards[4 * g:4 * g + 4].tolist()
        mean = sum(group) / 4
        std = math.sqrt(sum((x - mean) ** 2 for x in group) / 3)     # Bessel, as the paper's code
        for i, x in enumerate(group):
            assert math.isclose(adv[4 * g + i].item(), (x - mean) / (std + 1e-4), rel_tol=1e-5, abs_tol=1e-7)
    assert adv[4:].abs().max() == 0                                  # all equal: no signal


def test_k3_kl_is_nonnegative_zero_at_equality_and_unbiased():
    torch.manual_seed(0)
    a, b = torch.randn(1000), torch.randn(1000)
    assert (k3_kl(a, b) >= 0).all() and k3_kl(a, a).abs().max() == 0
    # E_{x~π}[k3] = KL(π‖π_ref) for two categorical distributions, sampled many times
    p, q = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.3, 0.3, 0.4])
    x = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(1))
    estimate = k3_kl(p.log()[x], q.log()[x]).mean().item()
    exact = (p * (p / q).log()).sum().item()
    assert math.isclose(estimate, exact, rel_tol=0.03)


def test_token_logps_masked_mean_and_whiten():
    torch.manual_seed(0)
    logits, tokens = torch.randn(2, 3, 7), torch.randint(0, 7, (2, 3))
    naive = torch.tensor([[math.log(torch.softmax(logits[b, t], -1)[tokens[b, t]].item()) for t in range(3)]
                          for b in range(2)])
    assert torch.allclose(token_logps(logits, tokens), naive, atol=1e-6)
    x, mask = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]]), torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    assert masked_mean(x, mask).item() == 2.0
    w = whiten(x, mask)
    real = w[mask]
    assert abs(real.mean().item()) < 1e-6 and math.isclose(real.std().item(), 1.0, rel_tol=1e-4)
    assert w[~mask].abs().max() == 0


def test_adaptive_kl_moves_beta_toward_the_target_within_twenty_percent():
    kl = AdaptiveKL(beta=0.1, target=6.0, horizon=100)
    kl.update(12.0, 50)                      # twice the target: error clipped to +0.2 → β·(1 + 0.2·0.5)
    assert math.isclose(kl.beta, 0.1 * 1.1)
    kl.update(3.0, 100)                      # half: error −0.5 clipped to −0.2
    assert math.isclose(kl.beta, 0.11 * 0.8)
    fixed = AdaptiveKL(beta=0.1)
    fixed.update(100.0, 1000)
    assert fixed.beta == 0.1


def test_the_ratio_is_taken_against_the_old_policy_and_the_value_clip_holds_both_ways():
    torch.manual_seed(1)
    logp, old, adv = -torch.rand(8) * 3, -torch.rand(8) * 3, torch.randn(8)
    loss, _ = clipped_surrogate(logp, old, adv, clip=0.2)
    ratio = [math.exp(a - b) for a, b in zip(logp.tolist(), old.tolist())]          # π/π_old
    want = [-min(r * a, min(max(r, 0.8), 1.2) * a) for r, a in zip(ratio, adv.tolist())]
    assert torch.allclose(loss, torch.tensor(want), atol=1e-6)
    values, old_v, returns = torch.tensor([-1.0, 1.0]), torch.tensor([0.0, 0.0]), torch.tensor([-0.1, 0.1])
    loss, clipped = clipped_value_loss(values, old_v, returns, clip=0.2)       # V far below / above V_old
    assert torch.allclose(loss, torch.tensor([0.5 * 0.81, 0.5 * 0.81])) and clipped.tolist() == [False, False]
    values, returns = torch.tensor([-1.0]), torch.tensor([-2.0])               # clipped to −0.2: 1.8² wins
    assert torch.allclose(clipped_value_loss(values, torch.zeros(1), returns, 0.2)[0], torch.tensor([0.5 * 1.8 ** 2]))


def test_gae_defaults_and_a_one_token_reply():
    torch.manual_seed(2)
    rewards, values, mask = torch.randn(2, 4), torch.randn(2, 4), torch.ones(2, 4, dtype=torch.bool)
    for got, want in zip(gae(rewards, values, mask), gae(rewards, values, mask, gamma=1.0, lam=0.95)):
        assert torch.equal(got, want)
    adv, ret = gae(torch.tensor([[2.0]]), torch.tensor([[0.5]]), torch.tensor([[True]]))
    assert adv.tolist() == [[1.5]] and ret.tolist() == [[2.0]]                  # δ = r − V, nothing after


def test_group_advantages_of_groups_of_one_and_two():
    assert group_advantages(torch.tensor([3.0, -1.0]), group_size=1).tolist() == [0.0, 0.0]   # no group
    adv = group_advantages(torch.tensor([1.0, 0.0]), group_size=2, eps=0.0)
    assert torch.allclose(adv, torch.tensor([1.0, -1.0]) / math.sqrt(2))         # (x − 0.5) / (1/√2)
    assert torch.equal(group_advantages(torch.tensor([1.0, 0.0]), 2), group_advantages(torch.tensor([1.0, 0.0]), 2, 1e-4))


def test_masked_mean_per_row_and_with_empty_rows():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    assert masked_mean(x, mask, dim=1).tolist() == [1.5, 6.0, 0.0]               # an empty row means 0
    assert masked_mean(x, torch.tensor([[0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)).item() == 2.0


def test_whiten_against_the_formula_and_its_edges():
    torch.manual_seed(3)
    x = torch.randn(2, 4) * 5 + 3
    for n_real in (2, 5):
        mask = torch.zeros(8, dtype=torch.bool)
        mask[:n_real] = True
        mask = mask.view(2, 4)
        real = x[mask].double()
        want = (real - real.mean()) / real.std()                                 # unbiased, as the recipes
        assert torch.allclose(whiten(x, mask)[mask].double(), want, atol=1e-5)
        assert torch.allclose(whiten(x, mask, shift_mean=False)[mask].double(), want + real.mean(), atol=1e-5)
    one = torch.tensor([[True, False, False, False], [False] * 4])
    assert whiten(x, one).abs().max() == 0                                       # one position: nothing to scale
    flat = whiten(torch.full((2, 4), 7.0), torch.ones(2, 4, dtype=torch.bool))
    assert torch.isfinite(flat).all() and flat.abs().max() == 0                  # constant: 0, not NaN


def test_adaptive_kl_with_a_target_below_one_nat():
    kl = AdaptiveKL(beta=0.1, target=0.5, horizon=10)
    kl.update(1.0, 5)                                                            # +0.2 · 5/10
    assert math.isclose(kl.beta, 0.1 * 1.1)
