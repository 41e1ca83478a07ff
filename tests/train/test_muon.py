"""Muon against oracles: Newton–Schulz against the SVD (the polynomial applied to each singular value),
one optimizer step against a naive reference written here and torch's AdamW, which tensors get Muon,
and in the loop: the loss falls, a stopped run resumes bitwise, FSDP is refused."""

import json

import pytest
import torch
from train_helpers import tiny_config

from scratchllm.data.loader import TokenLoader, val_windows, window_batches
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train import optim
from scratchllm.train.checkpoint import seed_everything
from scratchllm.train.config import TrainConfig
from scratchllm.train.loop import train
from scratchllm.train.muon import Muon, newton_schulz
from scratchllm.train.optim import hidden_matrices, make_optimizer

A, B, C = 3.4445, -4.7750, 2.0315   # the published coefficients (Jordan et al. 2024)


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_newton_schulz_keeps_singular_vectors_and_maps_values_into_the_band(shape):
    torch.manual_seed(0)
    # singular values spread over two decades, so the polynomial's whole range is exercised
    u, _ = torch.linalg.qr(torch.randn(shape[0], shape[0], dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], shape[1], dtype=torch.float64))
    k = min(shape)
    s = torch.logspace(-2, 0, k, dtype=torch.float64)
    g = (u[:, :k] * s) @ v[:, :k].T
    x = newton_schulz(g.float()).double()
    # Oracle: in g's singular basis the result is diagonal, each entry the scalar quintic iterated
    # five times on σ/‖g‖_F (the iteration acts on each singular value alone).
    in_basis = u[:, :k].T @ x @ v[:, :k]
    sigma = s / s.norm()
    for _ in range(5):
        sigma = A * sigma + B * sigma**3 + C * sigma**5
    assert torch.allclose(in_basis.diagonal(), sigma, atol=2e-4)
    assert (in_basis - torch.diag(in_basis.diagonal())).abs().max() < 2e-4
    assert 0.68 < sigma.min() and sigma.max() < 1.21      # the band the coefficients give
    sv = torch.linalg.svdvals(x)
    assert sv.min() > 0.68 and sv.max() < 1.21 and x.shape == g.shape


def test_newton_schulz_in_bf16_stays_in_the_band():
    torch.manual_seed(1)
    g = torch.randn(96, 64)
    x = newton_schulz(g, dtype=torch.bfloat16)   # what a GPU runs
    sv = torch.linalg.svdvals(x.float())
    assert x.dtype == torch.float32 and sv.min() > 0.6 and sv.max() < 1.3


def _naive_orthogonalise(m: torch.Tensor) -> torch.Tensor:
    """The iteration written out on the matrix as given, tall or wide (no transposing trick)."""
    x = m.double() / m.double().norm()
    for _ in range(5):
        if x.shape[0] <= x.shape[1]:
            xxt = x @ x.T
            x = A * x + B * xxt @ x + C * xxt @ xxt @ x
        else:                   # the same polynomial through the other Gram matrix: X p(XᵀX)
            xtx = x.T @ x
            x = A * x + B * x @ xtx + C * x @ xtx @ xtx
    return x


def _style(**kw):
    base = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=61, block_size=16, norm="rmsnorm",
                position="rope", mlp="swiglu", bias=False, tie_embeddings=False)
    return ModelConfig(**{**base, **kw})


def test_two_steps_equal_a_naive_reference_and_torch_adamw():
    seed_everything(0)
    model = Transformer(_style(n_kv_head=2))
    tc = TrainConfig(optimizer="muon", max_lr=3e-3, muon_lr=0.05, muon_momentum=0.9, weight_decay=0.1)
    opt = make_optimizer(model, tc)
    hidden = {id(p) for p in hidden_matrices(model)}
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    # the oracle for the rest: torch's AdamW over the same decay split
    twin = Transformer(_style(n_kv_head=2))
    twin.load_state_dict(model.state_dict())
    rest = [p for n, p in twin.named_parameters() if id(dict(model.named_parameters())[n]) not in hidden]
    adam = torch.optim.AdamW(optim._decay_split(rest, 0.1), lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    bufs = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in model.named_parameters() if id(p) in hidden}
    expected = {n: start[n].double() for n in bufs}
    for step in range(2):
        torch.manual_seed(10 + step)
        grads = {n: torch.randn_like(p) for n, p in model.named_parameters()}
        for (n, p), q in zip(model.named_parameters(), twin.parameters()):
            p.grad, q.grad = grads[n].clone(), grads[n].clone()
        opt.step()
        adam.step()
        for n in bufs:   # Nesterov momentum, orthogonalise, scale by √max(1, rows/cols)
            bufs[n] = 0.9 * bufs[n] + grads[n].double()
            m = grads[n].double() + 0.9 * bufs[n]
            rows, cols = m.shape
            expected[n] -= 0.05 * max(1.0, rows / cols) ** 0.5 * _naive_orthogonalise(m)
    for (n, p), q in zip(model.named_parameters(), twin.parameters()):
        if n in bufs:
            assert torch.allclose(p.double(), expected[n], atol=2e-5, rtol=0), n
            assert not torch.allclose(p, start[n], atol=1e-3), n     # it did move
        else:
            assert torch.equal(p, q), n


@pytest.mark.parametrize("extra", [dict(), dict(tie_embeddings=True, value_embeds=1)])
def test_muon_gets_exactly_the_blocks_matrices(extra):
    cfg = _style(**{"n_kv_head": 2, **extra})
    model = Transformer(cfg)
    opt = make_optimizer(model, TrainConfig(optimizer="muon", max_lr=1e-3, muon_lr=0.02, weight_decay=0.1))
    names = {id(p): n for n, p in model.named_parameters()}
    muon, decay, no_decay = opt.param_groups
    hand = sorted(f"blocks.{i}.{m}.weight" for i in range(2) for m in
                  ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"))
    assert muon["muon"] and sorted(names[id(p)] for p in muon["params"]) == hand
    assert muon["lr_mult"] == pytest.approx(20.0) and muon["momentum"] == 0.95
    matrices = {"tok_emb.weight"} | ({"value_embeds.0.weight"} if extra else {"lm_head.weight"})
    assert {names[id(p)] for p in decay["params"]} == matrices and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(names)


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_loop_with_muon_learns_and_resumes_bitwise(token_dir, tmp_path):
    cfg = tiny_config("train.optimizer=muon", "train.max_steps=12", "train.checkpoint_every=0")
    val = window_batches(val_windows(token_dir, 16, 8), 4)

    def run(out, cfg, resume=False):
        seed_everything(0)
        return train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4, seed=1), out,
                     val_batches=val, resume=resume, quiet=True)

    straight = run(tmp_path / "a", cfg)
    losses = _losses(tmp_path / "a")
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5                 # from ~ln 64 = 4.16 down by more than half a nat
    stopped = tiny_config("train.optimizer=muon", "train.max_steps=12", "train.checkpoint_every=0", "train.stop_after=5")
    assert run(tmp_path / "b", stopped).step == 5
    resumed = run(tmp_path / "b", cfg, resume=True)              # momentum buffers and Adam moments come back
    assert resumed.step == 12 and _losses(tmp_path / "b") == losses
    assert resumed.final["val_loss"] == straight.final["val_loss"]


def test_muon_refuses_bad_settings_and_sharded_models(monkeypatch):
    with pytest.raises(UserError, match="muon_momentum"):
        TrainConfig(optimizer="muon", muon_momentum=1.0).validate()
    with pytest.raises(UserError) as err:
        make_optimizer(torch.nn.Linear(3, 3), TrainConfig(optimizer="muon"))
    assert str(err.value) == ("train.optimizer=muon found no hidden matrices (2-D weights inside the model's blocks) "
                              "to orthogonalise; use train.optimizer=adamw for this model")
    monkeypatch.setattr(optim, "_holds_pieces", lambda model: True)
    with pytest.raises(UserError) as err:
        make_optimizer(Transformer(_style()), TrainConfig(optimizer="muon"))
    assert str(err.value) == ("train.optimizer=muon needs each whole matrix on every rank, which parallel.dp=fsdp "
                              "and parallel.tp shard; use parallel.dp=ddp (or train.optimizer=adamw with fsdp)")


def test_the_adamw_side_of_muon_takes_the_runs_settings():
    cfg = TrainConfig(optimizer="muon", max_lr=3e-4, muon_lr=0.03, beta1=0.8, beta2=0.99, eps=1e-6)
    opt = make_optimizer(Transformer(_style()), cfg)
    assert [g["lr_mult"] for g in opt.param_groups] == [pytest.approx(100.0), 1.0, 1.0]   # the loop's lr = mult x schedule
    assert [(g["lr"], g["betas"], g["eps"]) for g in opt.param_groups[1:]] == [(3e-4, (0.8, 0.99), 1e-6)] * 2


def test_a_stack_of_matrices_is_orthogonalised_one_by_one():
    torch.manual_seed(2)
    stack = torch.randn(3, 8, 16) * torch.tensor([1.0, 10.0, 100.0])[:, None, None]   # each its own norm
    alone = torch.stack([newton_schulz(m) for m in stack])
    assert torch.allclose(newton_schulz(stack), alone, atol=1e-6)


def test_a_tall_matrix_is_iterated_on_its_wide_side():
    tall = torch.randn(48, 16, generator=torch.Generator().manual_seed(3))
    # the same arithmetic as on its transpose (the smaller Gram matrix), bit for bit
    assert torch.equal(newton_schulz(tall), newton_schulz(tall.mT).mT)


def test_a_tiny_gradient_stays_finite_and_bf16_is_iterated_in_fp32_on_the_cpu():
    g = torch.zeros(4, 4)
    g[0, 0] = 1e-7                      # its norm equals the guard: a guard subtracted would divide by 0
    assert torch.isfinite(newton_schulz(g)).all()
    h = torch.randn(24, 16, generator=torch.Generator().manual_seed(4)).bfloat16()
    out = newton_schulz(h)
    assert out.dtype == torch.bfloat16 and torch.equal(out, newton_schulz(h.float()).bfloat16())


def test_muon_defaults_are_modded_nanogpts_and_fill_missing_group_settings():
    w, b = torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4))
    assert Muon([{"params": [w], "muon": True}]).defaults == dict(
        lr=0.02, momentum=0.95, nesterov=True, ns_steps=5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, muon=False)
    opt = Muon([{"params": [w], "muon": True}, {"params": [b]}], momentum=0.8, weight_decay=0.05)
    assert (opt.param_groups[0]["momentum"], opt.param_groups[1]["weight_decay"]) == (0.8, 0.05)
    with pytest.raises(ValueError) as err:
        Muon([{"params": [b], "muon": True}])
    assert str(err.value) == "Muon groups take 2-D weight matrices only"


@pytest.mark.parametrize("nesterov", [True, False])
def test_plain_or_nesterov_momentum_and_the_groups_step_count(nesterov):
    torch.manual_seed(5)
    w = torch.nn.Parameter(torch.randn(6, 4))
    grads = [torch.randn(6, 4), torch.randn(6, 4)]
    opt = Muon([{"params": [w], "muon": True, "lr": 0.1, "momentum": 0.9, "nesterov": nesterov, "ns_steps": 2}])
    want, buf = w.detach().clone(), torch.zeros(6, 4)
    for g in grads:
        w.grad = g.clone()
        opt.step()
        buf = 0.9 * buf + g
        m = g + 0.9 * buf if nesterov else buf
        want -= 0.1 * 1.5 ** 0.5 * newton_schulz(m, 2)             # a tall 6x4: sqrt(rows/cols)
    assert torch.allclose(w.detach(), want, atol=1e-6)


def test_a_parameter_without_a_gradient_does_not_stop_the_rest_of_its_group():
    frozen_w, w = torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4, 4))
    frozen_b, b = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    opt = Muon([{"params": [frozen_w, w], "muon": True}, {"params": [frozen_b, b], "lr": 0.1}])
    before = [p.detach().clone() for p in (frozen_w, w, frozen_b, b)]
    w.grad, b.grad = torch.randn(4, 4), torch.randn(4)
    opt.step()
    moved = [not torch.equal(p, q) for p, q in zip((frozen_w, w, frozen_b, b), before)]
    assert moved == [False, True, False, True]
