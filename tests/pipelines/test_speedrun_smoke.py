"""End to end in seconds: `scratchllm speedrun` with tiny settings on a slice of the built-in corpus,
its SFT stage on the standard-library instruction set, and a rerun that skips every complete stage."""

import json
import math

import numpy as np
import pytest
import torch
from test_baselines import _oracle

import scratchllm
from scratchllm.cli import main
from scratchllm.data.chat import load_conversations
from scratchllm.data.stdlib_sft import stdlib_function_records
from scratchllm.tokenizer.special import render_conversation
from scratchllm.train.finetune import is_chat_run

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=128", "train.batch_size=4",
        "train.max_steps=6", "train.warmup_steps=2", "train.eval_every=3", "train.eval_batches=2",
        "data.max_bytes=150000", "data.vocab_size=300", "data.val_fraction=0.1", "data.workers=1",
        "sft.train.max_steps=4", "sft.train.eval_every=2", "sft.train.eval_batches=2", "sft.train.batch_size=4"]
STAGES = ["tokens", "pretrain", "evaluate", "sft"]


def _marker(out, name):
    return json.loads((out / "stages" / f"{name}.json").read_text())


def test_speedrun_writes_report_metrics_sft_and_a_loadable_run(tmp_path, capsys):
    out = tmp_path / "speedrun"
    assert main(["speedrun", "--out", str(out), "--no-progress", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "scratchllm generate --run" in printed and f"scratchllm chat --run {out / 'sft'}" in printed
    assert [line.split(":")[0] for line in printed.splitlines() if line.startswith("stage ")] == \
        [f"stage {s}" for s in STAGES]
    report = (out / "report.md").read_text()
    for needle in ("val bits per byte", "bigram baseline", "unigram baseline", "parameters", "tokens seen",
                   "loss.png", "## What went well", "## What did not", "## Cost", "device-minutes",
                   "## Samples of the base model", "## Fine-tuning (SFT)", "base (before SFT)", "[model]"):
        assert needle in report, needle
    assert (out / "loss.png").stat().st_size > 1000
    # The figures against their formulas, from the token directory read by its documented layout.
    pre, ev = _marker(out, "pretrain")["figures"], _marker(out, "evaluate")["figures"]
    meta = json.loads((out / "tokens" / "meta.json").read_text())
    val_tokens, val_bytes = meta["splits"]["val"]["tokens"], meta["splits"]["val"]["bytes"]
    assert pre["val_bpb"] == pytest.approx(pre["val_loss"] / math.log(2) * val_tokens / val_bytes, rel=1e-9)
    split = {s: np.concatenate([np.fromfile(p, dtype="<u2", offset=64) for p in sorted((out / "tokens").glob(f"{s}-*.bin"))])
             for s in ("train", "val")}
    assert len(split["val"]) == val_tokens
    unigram, bigram = _oracle(split["train"].tolist(), split["val"].tolist(), meta["vocab_size"])
    assert ev["baselines"]["unigram_bpb"] == pytest.approx(unigram / val_bytes, rel=1e-9)
    assert ev["baselines"]["bigram_bpb"] == pytest.approx(bigram / val_bytes, rel=1e-9)
    assert f"{pre['val_bpb']:.4f}" in report and f"{bigram / val_bytes:.4f}" in report

    run = scratchllm.load(out)
    assert run.tokenizer.vocab_size == meta["vocab_size"] == 300
    assert run.config.model.vocab_size == 320          # 300 rounded up to the next multiple of 64
    assert run.model(torch.tensor([[1, 2, 3]])).shape[-1] == 320

    # SFT: the standard-library instruction set, trained from the base, a chat run with its held-out loss.
    sft = _marker(out, "sft")["figures"]
    convs = load_conversations(out / "sft-data.json")
    assert sft["conversations"] == len(convs) > 20
    assert sft["conversations"] + sft["dropped_too_long"] == len(stdlib_function_records())
    block = scratchllm.load(out).config.model.block_size
    assert all(len(render_conversation(run.tokenizer, c)[0]) <= block + 1 for c in convs), "a kept one is cut"
    assert convs[0][0]["content"].startswith("Write a Python function `") and convs[0][1]["content"].startswith("def ")
    assert is_chat_run(out / "sft") and scratchllm.load(out / "sft").step == sft["steps"] == 4
    assert math.isfinite(sft["base_val_loss"]) and math.isfinite(sft["val_loss"])
    assert f"{sft['val_loss']:.4f}" in report

    # The same command again: every stage is complete, none runs, nothing is rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "checkpoints").rglob("*") if p.is_file()}
    sft_mtimes = {p: p.stat().st_mtime_ns for p in (out / "sft").rglob("*") if p.is_file()}
    assert main(["speedrun", "--out", str(out), "--no-progress", *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.count("complete, skipped") == len(STAGES), printed
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert {p: p.stat().st_mtime_ns for p in sft_mtimes} == sft_mtimes

    # A changed SFT setting reruns SFT only.
    assert main(["speedrun", "--out", str(out), "--no-progress", *TINY, "sft.train.max_steps=2"]) == 0
    printed = capsys.readouterr().out
    assert "stage sft: settings changed (overrides)" in printed and printed.count("complete, skipped") == 3
    assert scratchllm.load(out / "sft").step == 2 and {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_speedrun_refuses_a_run_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "checkpoints" / "step-000001").mkdir(parents=True)
    assert main(["speedrun", "--out", str(out), *TINY]) == 2
    assert "already holds a run that speedrun did not make" in capsys.readouterr().err


def test_until_stops_after_a_stage(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["speedrun", "--out", str(out), "--no-progress", "--until", "tokens", *TINY]) == 0
    assert "stopped after stage tokens" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["tokens.json"]
    assert not (out / "checkpoints").exists() and (out / "tokens" / "meta.json").is_file()
