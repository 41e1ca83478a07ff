"""End to end in seconds: `scratchllm speedrun` with tiny settings on a slice of the built-in corpus."""

import json
import math

import numpy as np
import pytest
import torch
from test_baselines import _oracle

import scratchllm
from scratchllm.cli import main

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32", "train.batch_size=4",
        "train.max_steps=6", "train.warmup_steps=2", "train.eval_every=3", "train.eval_batches=2",
        "data.max_bytes=150000", "data.vocab_size=300", "data.val_fraction=0.1", "data.workers=1"]


def test_speedrun_writes_report_metrics_and_a_loadable_run(tmp_path, capsys):
    out = tmp_path / "speedrun"
    assert main(["speedrun", "--out", str(out), "--no-progress", *TINY]) == 0
    assert "scratchllm generate --run" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    for needle in ("val bits per byte", "bigram baseline", "unigram baseline", "parameters", "tokens seen",
                   "loss.png", "## Samples", "[model]"):
        assert needle in report
    assert (out / "loss.png").stat().st_size > 1000
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    # The figures against their formulas, from the token directory read by its documented layout.
    meta = json.loads((out / "tokens" / "meta.json").read_text())
    val_tokens, val_bytes = meta["splits"]["val"]["tokens"], meta["splits"]["val"]["bytes"]
    assert last["val_bpb"] == pytest.approx(last["val_loss"] / math.log(2) * val_tokens / val_bytes, rel=1e-9)
    split = {s: np.concatenate([np.fromfile(p, dtype="<u2", offset=64) for p in sorted((out / "tokens").glob(f"{s}-*.bin"))])
             for s in ("train", "val")}
    assert len(split["val"]) == val_tokens
    unigram, bigram = _oracle(split["train"].tolist(), split["val"].tolist(), meta["vocab_size"])
    assert last["unigram_bpb"] == pytest.approx(unigram / val_bytes, rel=1e-9)
    assert last["bigram_bpb"] == pytest.approx(bigram / val_bytes, rel=1e-9)

    run = scratchllm.load(out)
    assert run.tokenizer.vocab_size == meta["vocab_size"] == 300
    assert run.config.model.vocab_size == 320          # 300 rounded up to the next multiple of 64
    assert run.model(torch.tensor([[1, 2, 3]])).shape[-1] == 320


def test_speedrun_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "checkpoints" / "step-000001").mkdir(parents=True)
    assert main(["speedrun", "--out", str(out), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
