"""train/step.py's pieces against plain references: the loss as a loop over tokens, k micro-batches
as one batch, token counts by hand, a token-weighted validation mean. Fast on purpose: mutation
testing (bench/mutation.py) runs this file once per mutant."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.step import (accumulate_gradients, autocast, batch_tokens, evaluate, next_token_loss,
                                   split_loss, to_device)

CPU = torch.device("cpu")


def _model(seed=0):
    torch.manual_seed(seed)
    return Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=17, block_size=8))


def _batch(rows, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 17, (rows, 6), generator=g), torch.randint(0, 17, (rows, 6), generator=g)
    y[torch.rand(rows, 6, generator=g) < 0.3] = -100
    return x, y


def test_next_token_loss_is_the_mean_over_counted_tokens():
    model = _model().eval()
    x, y = _batch(3, 1)
    with torch.no_grad():
        logp = torch.log_softmax(model(x).double(), -1)
    terms = [-logp[b, t, int(y[b, t])].item() for b in range(3) for t in range(6) if y[b, t] != -100]
    assert next_token_loss(model, (x, y)).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


@pytest.mark.filterwarnings("ignore:CUDA is not available")   # the CUDA context is only built, never entered
def test_autocast_is_bf16_only_when_asked_or_on_cuda():
    for dtype, on in [("bfloat16", True), ("auto", False), ("float32", False)]:
        with autocast(CPU, dtype):
            assert torch.is_autocast_enabled("cpu") == on
            if on:
                assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert isinstance(autocast(torch.device("cuda"), "float32"), contextlib.nullcontext)
    assert isinstance(autocast(torch.device("cuda"), "auto"), torch.autocast)


def test_to_device_keeps_the_structure():
    batch = {"a": (torch.ones(2), [torch.zeros(1), 3]), "b": "text"}
    moved = to_device(batch, torch.device("meta"))
    assert moved["b"] == "text" and isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list)
    assert moved["a"][0].device.type == moved["a"][1][0].device.type == "meta" and moved["a"][1][1] == 3


def test_batch_tokens_counts_the_targets_that_count():
    y = torch.tensor([[1, -100, 2], [-100, -100, 5]])
    x = torch.zeros(2, 3, dtype=torch.long)
    assert int(batch_tokens((x, y))) == 3 and int(batch_tokens([x, y, "extra"])) == 3
    assert int(batch_tokens({"inputs": x, "targets": y})) == 3 and int(batch_tokens({"inputs": x, "labels": y})) == 3
    assert batch_tokens(torch.zeros(4, 5)) == 20                      # no targets: the first tensor's size
    assert batch_tokens({"inputs": torch.zeros(2, 7)}) == 14
    assert batch_tokens([torch.zeros(3)]) == 3 and batch_tokens(("meta", torch.zeros(2, 2))) == 4


def test_split_loss_reads_both_shapes():
    metrics = {"acc": 1.0}
    loss, got = split_loss((torch.tensor(2.0), metrics))
    assert loss.item() == 2.0 and got == metrics and got is not metrics   # a copy: the caller may pop from it
    assert split_loss(torch.tensor(3.0))[1] == {}


def test_k_micro_batches_equal_one_batch_and_report_their_means():
    model = _model()
    x, y = _batch(4, 2)
    seen = []

    def loss_fn(m, batch):
        loss = next_token_loss(m, batch)
        return loss, {"double": 2 * loss, "rows": batch[0].shape[0]}

    @contextlib.contextmanager
    def no_sync(m):
        seen.append(m)
        yield

    report = {}
    mean = accumulate_gradients(model, [(x[:2], y[:2]), (x[2:], y[2:])], loss_fn, CPU, report=report, no_sync=no_sync)
    grads = [p.grad.clone() for p in model.parameters()]
    assert seen == [model]                                        # every micro-batch but the last
    halves = [next_token_loss(model, (x[:2], y[:2])).item(), next_token_loss(model, (x[2:], y[2:])).item()]
    assert mean.item() == pytest.approx(sum(halves) / 2, rel=1e-5) and not mean.requires_grad
    assert report["double"].item() == pytest.approx(sum(halves), rel=1e-5) and report["rows"] == 2.0
    assert int(report["tokens"]) == int((y != -100).sum())
    model.zero_grad()
    (sum(next_token_loss(model, (x[i:i + 2], y[i:i + 2])) for i in (0, 2)) / 2).backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_evaluate_weights_by_tokens_and_restores_the_mode():
    model = _model().train()
    batches = [_batch(2, 3), _batch(1, 4)]

    def loss_fn(m, batch):
        assert not m.training
        return next_token_loss(m, batch), {"one": torch.tensor(1.0)}

    out = evaluate(model, batches, loss_fn, CPU)
    assert model.training
    n = [int((y != -100).sum()) for _, y in batches]
    with torch.no_grad():
        losses = [next_token_loss(model.eval(), b).item() for b in batches]
    assert out["loss"] == pytest.approx((losses[0] * n[0] + losses[1] * n[1]) / sum(n), rel=1e-5)
    assert out["one"] == pytest.approx(1.0)
    counted = evaluate(model, batches, lambda m, b: (torch.tensor(float(b[0].shape[0])), {"tokens": 10 * b[0].shape[0]}), CPU)
    assert counted["loss"] == pytest.approx((2 * 20 + 1 * 10) / 30)     # a loss's own token count weighs
    assert evaluate(model, [], loss_fn, CPU) == {} and math.isfinite(out["loss"])


def test_accumulation_runs_the_forward_under_the_asked_dtype():
    # train.dtype=bfloat16 on the CPU: the micro-batch's loss is the one computed under bf16 autocast.
    x, y = _batch(2, 7)
    model = _model()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        want = next_token_loss(model, (x, y)).item()
    model.zero_grad()
    got = accumulate_gradients(model, [(x, y)], next_token_loss, CPU, "bfloat16").item()
    plain = next_token_loss(model, (x, y)).item()
    assert got == pytest.approx(want, abs=1e-6) and got != pytest.approx(plain, abs=1e-6)
