"""The optimizer step against torch's own AdamW driven by hand: which parameters decay, clipping of
the global gradient norm, accumulation, and the grad_norm the loop logs."""

import json

import pytest
import torch
import torch.nn.functional as F
from train_helpers import tiny_config

from scratchllm.data.loader import TokenLoader
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.config import TrainConfig
from scratchllm.train.loop import train
from scratchllm.train.optim import make_optimizer, param_groups


def _decays(name: str) -> bool:
    """Hand rule, by name: matrices and embeddings decay; biases and every norm gain do not."""
    return not (name.endswith(".bias") or "norm" in name)


@pytest.mark.parametrize("style", [dict(), dict(norm="rmsnorm", position="rope", mlp="swiglu", bias=False,
                                               tie_embeddings=False, qk_norm=True, n_kv_head=2)])
def test_decay_groups_hold_exactly_the_matrices(style):
    model = Transformer(ModelConfig(n_layer=2, n_head=4, n_embd=32, vocab_size=61, block_size=24, **style))
    decay, no_decay = param_groups(model, weight_decay=0.3)
    assert decay["weight_decay"] == 0.3 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}      # tied weights appear once
    assert sorted(names[id(p)] for p in decay["params"]) == sorted(n for n in names.values() if _decays(n))
    assert sorted(names[id(p)] for p in no_decay["params"]) == sorted(n for n in names.values() if not _decays(n))
    assert len(no_decay["params"]) > 0 and len(decay["params"]) > 0


def test_zero_gradient_step_shrinks_only_the_decayed_weights():
    # AdamW's decoupled decay: with a zero gradient, p <- p * (1 - lr * wd) exactly, and Adam's part is 0.
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    with torch.no_grad():
        model[2].weight.uniform_(0.5, 1.5), model[2].bias.uniform_(-1, 1), model[1].bias.uniform_(-1, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, TrainConfig(weight_decay=0.5, max_lr=0.1, beta1=0.8, beta2=0.9, eps=1e-6))
    assert [(g["betas"], g["eps"], g["lr"]) for g in opt.param_groups] == [((0.8, 0.9), 1e-6, 0.1)] * 2
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if name in ("0.weight", "1.weight") else 1.0
        assert torch.allclose(p, before[name] * factor, atol=1e-7, rtol=0), name


@pytest.mark.parametrize("clip", [0.05, 0.0])
def test_loop_steps_equal_hand_driven_adamw_with_clipping(token_dir, tmp_path, clip):
    # eps=1 makes Adam's update ~ the gradient itself, so the size of the clipped gradient shows in
    # the weights (with eps=1e-8, Adam's first steps are nearly sign(g) and hide any clipping).
    cfg = tiny_config("train.max_steps=3", "train.grad_accum=2", "train.schedule=constant", "train.warmup_steps=0",
                      "train.eps=1.0", "train.weight_decay=0.2", f"train.grad_clip={clip}", "model.dropout=0.0")
    torch.manual_seed(0)
    ours, oracle = Transformer(cfg.model), Transformer(cfg.model)
    oracle.load_state_dict(ours.state_dict())
    train(ours, cfg, TokenLoader(token_dir, "train", 16, 4, seed=1), tmp_path, quiet=True)

    tc = cfg.train
    decay = [p for p in oracle.parameters() if p.dim() >= 2]
    rest = [p for p in oracle.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=tc.max_lr, betas=(tc.beta1, tc.beta2), eps=tc.eps)
    loader, norms = TokenLoader(token_dir, "train", 16, 4, seed=1), []
    for _ in range(3):
        for _ in range(2):
            x, y = next(loader)
            (F.cross_entropy(oracle(x).reshape(-1, 64), y.reshape(-1)) / 2).backward()
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in oracle.parameters()]))
        norms.append(norm.item())
        if clip:
            assert norm > 2 * clip        # the clip is really active in this test
            for p in oracle.parameters():
                p.grad.mul_(clip / (norm + 1e-6))
        opt.step()
        opt.zero_grad()
    for (name, a), b in zip(ours.named_parameters(), oracle.parameters()):
        assert torch.allclose(a, b, atol=2e-6, rtol=0), name
    logged = [json.loads(line)["grad_norm"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == pytest.approx(norms, rel=1e-5)   # the norm before clipping


def test_fused_kernel_only_on_cuda():
    # The fused AdamW kernel (one launch for all parameters) is chosen for CUDA; torch >= 2.4 also
    # builds it for CPU tensors, which lets this be checked on a machine without a GPU.
    net = torch.nn.Linear(3, 3)
    assert make_optimizer(net, TrainConfig(), "cuda").defaults["fused"] is True
    assert not make_optimizer(net, TrainConfig(), "cpu").defaults["fused"]
    assert not make_optimizer(net, TrainConfig()).defaults["fused"]
