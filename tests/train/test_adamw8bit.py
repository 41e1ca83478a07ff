"""8-bit AdamW (block-wise quantized moments) against torch.optim.AdamW, and its exact resume."""

import pytest
import torch
from safetensors.torch import load_file

from scratchllm.data.loader import TokenLoader
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.adamw8bit import (BLOCK, SIGNED, UNSIGNED, AdamW8bit, dequantize, dynamic_code, quantize,
                                        state_bytes)
from scratchllm.train.config import TrainConfig
from scratchllm.train.loop import train
from scratchllm.train.optim import make_optimizer
from scratchllm.train.tracking import read_metrics
from train_helpers import tiny_config

# n_embd 64: every matrix has >= 4096 elements, so all of them get 8-bit moments
WIDE = ("model.n_embd=64", "model.n_head=4", "train.eval_every=0", "train.checkpoint_every=0", "train.max_steps=30")


def test_quantize_picks_the_nearest_level_of_each_block_scaled_value():
    x = torch.randn(3 * BLOCK + 17, generator=torch.Generator().manual_seed(0)) * torch.logspace(-6, 0, 3 * BLOCK + 17)
    for code, values in ((SIGNED, x), (UNSIGNED, x.abs())):
        index, scale = quantize(values, code)
        got = dequantize(index, scale, code, values.numel())
        # brute force: for every element, the level whose scaled value is closest
        blocks = torch.nn.functional.pad(values, (0, index.numel() - values.numel())).view(-1, BLOCK)
        best = (blocks[..., None] / scale[:, None, None] - code).abs().argmin(-1)
        assert torch.equal(index.long(), best)
        assert torch.allclose(got, (code[best] * scale[:, None]).reshape(-1)[:values.numel()])
    assert SIGNED.numel() == 255 and UNSIGNED.numel() == 256 and SIGNED.max() == UNSIGNED.max() == 1.0
    assert (UNSIGNED > 0).all()  # no zero level for the second moment: 1/sqrt(v) never divides by 0


def _run(tmp_path, token_dir, name, optimizer, steps=30, resume=False):
    cfg = tiny_config(*WIDE, f"train.optimizer={optimizer}", f"train.max_steps={steps}")
    ckpt.seed_everything(0)
    train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4, seed=1), tmp_path / name,
          quiet=True, resume=resume)
    return [r["loss"] for r in read_metrics(tmp_path / name / "metrics.jsonl")]


def test_a_tiny_run_follows_fp32_adamw_closely(tmp_path, token_dir):
    exact = _run(tmp_path, token_dir, "fp32", "adamw")
    eight = _run(tmp_path, token_dir, "8bit", "adamw8bit")
    assert exact[-1] < exact[0] - 1.0  # the model learns ...
    # ... and the 8-bit run's loss stays within 2% of fp32 AdamW's at every step
    assert max(abs(a - b) / a for a, b in zip(exact, eight)) < 0.02, (exact, eight)


def test_state_takes_about_a_quarter_of_fp32_adamw():
    cfg = tiny_config(*WIDE)
    model = Transformer(cfg.model)
    x = torch.randint(0, 64, (2, 16))
    model(x).logsumexp(-1).mean().backward()
    fp32, eight = make_optimizer(model, cfg.train), AdamW8bit(model.parameters())
    fp32.step()
    eight.step()
    big = sum(p.numel() for p in model.parameters() if p.numel() >= 4096)
    small = sum(p.numel() for p in model.parameters() if p.numel() < 4096)
    # 1 byte a moment + one fp32 scale a block of 256, fp32 moments for small tensors, a step per tensor
    blocks = sum(-(-p.numel() // BLOCK) for p in model.parameters() if p.numel() >= 4096)
    n_tensors = len(list(model.parameters()))
    assert state_bytes(eight) == 2 * big + 2 * 4 * blocks + 8 * small + 4 * n_tensors
    assert 0.25 < state_bytes(eight) / state_bytes(fp32) < 0.30


def test_resume_continues_exactly(tmp_path, token_dir):
    straight = _run(tmp_path, token_dir, "straight", "adamw8bit", steps=6)
    _run(tmp_path, token_dir, "split", "adamw8bit", steps=3)
    resumed = _run(tmp_path, token_dir, "split", "adamw8bit", steps=6, resume=True)
    assert resumed == straight  # bit for bit: the quantized moments are saved as they are
    a = load_file(str(ckpt.find_checkpoint(tmp_path / "straight").path / "model.safetensors"))
    b = load_file(str(ckpt.find_checkpoint(tmp_path / "split").path / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_run_config_picks_8bit_adamw_with_its_settings():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    opt = make_optimizer(model, TrainConfig(optimizer="adamw8bit", max_lr=3e-4, beta1=0.8, beta2=0.99, eps=1e-6,
                                            weight_decay=0.2))
    assert isinstance(opt, AdamW8bit)
    assert [(len(g["params"]), g["lr"], g["betas"], g["eps"], g["weight_decay"]) for g in opt.param_groups] == [
        (1, 3e-4, (0.8, 0.99), 1e-6, 0.2), (3, 3e-4, (0.8, 0.99), 1e-6, 0.0)]


@pytest.mark.parametrize("signed, per_decade", [(True, [1, 2, 4, 8, 16, 32, 64]),
                                                (False, [2, 4, 8, 16, 32, 65, 129])])
def test_the_dynamic_code_spaces_its_levels_evenly_within_each_decade(signed, per_decade):
    # The documented rule worked by hand: decade d gets levels in proportion to 2^d, 127 in all
    # (signed, per side) or 256 (unsigned: 256 * 2^d / 127 rounds to these, which sum to 256);
    # decade d's n levels are 10^(d-7) * (1 + 9k/n), k = 1..n.
    want = [10.0 ** (d - 7) * (1 + 9 * k / n) for d, n in enumerate(per_decade) for k in range(1, n + 1)]
    want = torch.tensor(want, dtype=torch.float32)
    if signed:
        want = torch.cat([-want.flip(0), torch.zeros(1), want])
    code = dynamic_code(signed)
    assert code.dtype == torch.float32 and torch.equal(code, want)


def test_two_steps_track_torch_adamw_with_decoupled_decay():
    torch.manual_seed(0)
    start = [torch.randn(65, 65), torch.randn(10)]        # 4,225 elements (8-bit, not a whole number of blocks); fp32
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    ref = [torch.nn.Parameter(t.clone()) for t in start]
    settings = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.5)
    opt, oracle = AdamW8bit(ours, **settings), torch.optim.AdamW(ref, **settings)
    for step in range(2):
        grads = [torch.randn_like(t) for t in start]
        for p, q, g in zip(ours, ref, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        oracle.step()
        # step 1 runs on exact moments (0 is stored exactly); step 2 on dequantized ones (here
        # within 5% of a step: 4.8e-4 of lr = 0.01)
        for p, q in zip(ours, ref):
            assert torch.allclose(p, q, atol=1e-6 if step == 0 else 0.1 * settings["lr"]), step
    assert "m8" in opt.state[ours[0]] and "exp_avg" in opt.state[ours[1]]


def test_the_defaults_are_torch_adamws():
    p = [torch.nn.Parameter(torch.zeros(3))]
    torch_defaults = torch.optim.AdamW(p).defaults
    assert AdamW8bit(p).defaults == {**{k: torch_defaults[k] for k in ("lr", "betas", "eps", "weight_decay")},
                                     "min_8bit_size": 4096}
