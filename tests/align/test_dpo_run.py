"""`scratchllm align dpo` end to end on a synthetic preference whose rule is learnable (chosen replies end
in "!", rejected in "?"): the held-out margin rises, and the saved policy prefers the rule on new prompts
more than its reference does; full and LoRA runs."""

from __future__ import annotations

import json

import pytest
import torch
from align_helpers import make_run, rule_pairs, write_jsonl

import scratchllm
from scratchllm.align.dpo import pair_logps
from scratchllm.cli import main
from scratchllm.data.preference import collate_pairs, encode_pairs, load_pairs

FAST = ["train.max_steps=30", "train.max_lr=1e-3", "train.min_lr=1e-4", "train.warmup_steps=0", "train.eval_every=10",
        "train.log_every=10", "train.progress=false", "train.device=cpu", "train.checkpoint_every=0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo")
    make_run(root / "sft")
    write_jsonl(root / "train.jsonl", rule_pairs(64, seed=0))
    write_jsonl(root / "held.jsonl", rule_pairs(16, seed=1))
    return root


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _preference(model, root) -> torch.Tensor:
    """log π(chosen) − log π(rejected) on each held-out pair."""
    run = scratchllm.load(root / "sft")
    examples, _ = encode_pairs(run.tokenizer, load_pairs(root / "held.jsonl"), run.config.model.block_size)
    with torch.no_grad():
        chosen, rejected = pair_logps(model, collate_pairs(examples))
    return chosen - rejected


@pytest.mark.parametrize("method, extra", [("full", []), ("lora", ["dpo.lora.r=4", "train.max_lr=3e-3"])])
def test_dpo_learns_the_rule_on_held_out_prompts(world, method, extra, capsys):
    out = world / f"dpo-{method}"
    argv = ["align", "dpo", "--run", str(world / "sft"), "--data", str(world / "train.jsonl"),
            "--val-data", str(world / "held.jsonl"), "--out", str(out), "--beta", "0.1", *FAST,
            f"dpo.method={method}", *extra]
    assert main(argv) == 0
    assert "held-out reward accuracy" in capsys.readouterr().out
    evals = [r for r in _records(out) if "val_rewards/margins" in r]
    assert len(evals) == 3
    margins = [r["val_rewards/margins"] for r in evals]
    assert 0 < margins[0] < margins[-1], margins   # at step 0 the policy is the reference: margin 0
    assert evals[-1]["val_rewards/accuracies"] >= 0.9
    last = _records(out)[-1]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert key in last and f"val_{key}" in last
    # the saved policy, loaded as any run, prefers the rule on new prompts more than the reference does
    policy = scratchllm.load(out).model
    reference = scratchllm.load(world / "sft").model
    gain = _preference(policy, world) - _preference(reference, world)
    assert (gain > 0).float().mean() >= 0.9
    # the logged held-out margin is β · the mean gain (implicit rewards = β·(log π − log π_ref))
    assert evals[-1]["val_rewards/margins"] == pytest.approx(0.1 * gain.mean().item(), rel=1e-3)
    if method == "lora":
        assert (out / "adapter_config.json").is_file()


def test_ipo_and_hinge_run_through_the_loop(world):
    for loss in ("ipo", "hinge"):
        out = world / f"dpo-{loss}"
        argv = ["align", "dpo", "--run", str(world / "sft"), "--data", str(world / "train.jsonl"),
                "--val-data", str(world / "held.jsonl"), "--out", str(out), "--loss", loss,
                *FAST, "train.max_steps=10"]
        assert main(argv) == 0
        last = _records(out)[-1]
        assert last["val_rewards/margins"] > 0 and last["tokens"] > 0


def test_resume_continues_exactly(world):
    """5 steps, then --resume to 10, ends with the same weights as 10 steps at once (references recomputed)."""
    base = ["align", "dpo", "--run", str(world / "sft"), "--data", str(world / "train.jsonl"),
            "--val-data", str(world / "held.jsonl")]
    # a constant lr: then a 5-step run extended to 10 follows the 10-step run's schedule
    fast = [*FAST, "train.eval_every=0", "train.checkpoint_every=5", "train.min_lr=1e-3"]
    assert main([*base, "--out", str(world / "straight"), *fast, "train.max_steps=10"]) == 0
    assert main([*base, "--out", str(world / "halves"), *fast, "train.max_steps=5"]) == 0
    assert main(["align", "dpo", "--out", str(world / "halves"), "--resume", "train.max_steps=10"]) == 0
    a, b = scratchllm.load(world / "straight").model, scratchllm.load(world / "halves").model
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
