"""`scratchllm align ppo` end to end on the tiny next-digit run against a fixed reward model (a random
scalar head on a tiny transformer: any fixed score is a reward to climb): the RM's score rises with the
KL bounded, the metrics the issue names are logged, the run resumes exactly and loads as the policy, and a
reward model with another tokenizer is refused in one sentence."""

from __future__ import annotations

import json

import pytest
import torch
from align_helpers import byte_tokenizer, tiny_config, write_jsonl
from rl_helpers import format_run, next_digit_items

import scratchllm
from scratchllm.cli import main
from scratchllm.model.heads import RewardModel
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

TASK = ["train.device=cpu", "train.progress=false", "train.batch_size=16", "ppo.prompts_per_rollout=32",
        "ppo.max_new_tokens=3", "ppo.epochs=2", "train.max_lr=1e-2", "train.min_lr=1e-2"]


def _reward_model(path, tokenizer, seed=0):
    torch.manual_seed(seed)
    rm = RewardModel(Transformer(tiny_config(block_size=16)))
    torch.nn.init.normal_(rm.head.weight, std=1.0)        # a fixed, arbitrary preference among replies
    save_run_weights(path, rm.eval(), tokenizer)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppo")
    format_run(root / "sft", correct=1.0, steps=40, lr=1e-2)
    _reward_model(root / "rm", byte_tokenizer())
    write_jsonl(root / "prompts.jsonl", [{"prompt": i["prompt"]} for i in next_digit_items()])
    return root


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _ppo(root, out, *extra):
    return main(["align", "ppo", "--run", str(root / "sft"), "--reward", str(root / "rm"), "--prompts",
                 str(root / "prompts.jsonl"), "--out", str(out), *TASK, *extra])


def test_score_rises_and_the_metrics_are_logged(world):
    out = world / "run"
    assert _ppo(world, out, "train.max_steps=40", "ppo.kl_coef=0.02") == 0
    records = _records(out)
    for name in ("score_mean", "kl", "kl_coef", "entropy", "clip_frac", "value_loss", "approx_kl", "policy_loss",
                 "response_len", "rollout_tokens_per_s"):
        assert all(name in r for r in records), name
    first = sum(r["score_mean"] for r in records[:8]) / 8
    last = sum(r["score_mean"] for r in records[-8:]) / 8
    assert last > first + 0.2, (first, last)
    assert max(r["kl"] for r in records) < 5.0
    assert scratchllm.load(out).model(torch.tensor([[48]])).shape[-1] == 320   # opens as the policy


def test_adaptive_kl_and_exact_resume(world):
    base = ["train.max_steps=6", "ppo.kl_target=0.5", "ppo.kl_horizon=100", "train.checkpoint_every=0"]
    assert _ppo(world, world / "whole", *base) == 0
    assert _ppo(world, world / "parts", *base, "train.stop_after=3") == 0
    assert main(["align", "ppo", "--out", str(world / "parts"), "--resume", "train.stop_after=0"]) == 0
    a, b = _records(world / "whole"), _records(world / "parts")
    assert [r["kl_coef"] for r in a] == [r["kl_coef"] for r in b]
    assert len({r["kl_coef"] for r in a}) > 1                      # the controller moved β
    wa, wb = scratchllm.load(world / "whole").model, scratchllm.load(world / "parts").model
    assert all(torch.equal(x, y) for x, y in zip(wa.state_dict().values(), wb.state_dict().values()))


def test_a_reward_model_with_another_tokenizer_is_refused(world, capsys):
    other = byte_tokenizer()
    other = Tokenizer({**other.ranks, b"ab": 256}, "gpt4", {k: v + 1 for k, v in other.special_tokens.items()})
    _reward_model(world / "rm_other", other)
    assert main(["align", "ppo", "--run", str(world / "sft"), "--reward", str(world / "rm_other"), "--prompts",
                 str(world / "prompts.jsonl"), "--out", str(world / "bad"), *TASK]) == 2
    assert "uses another tokenizer" in capsys.readouterr().err
