"""The reward model: a scalar on the last real token (padding-blind), the Bradley–Terry loss, and
`scratchllm align reward` reaching held-out accuracy >= 0.9 on a learnable rule; `scratchllm.load` scores."""

from __future__ import annotations

import json
import math

import pytest
import torch
from align_helpers import byte_tokenizer, make_run, rule_pairs, tiny_model, write_jsonl

import scratchllm
from scratchllm.align.pairs import build_pairs
from scratchllm.align.reward import bradley_terry, last_token_lengths
from scratchllm.cli import main
from scratchllm.data.preference import Pair, collate_pairs, encode_pairs
from scratchllm.errors import UserError
from scratchllm.model.heads import RewardModel
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
from scratchllm.train.checkpoint import save_run_weights

FAST = ["train.max_steps=60", "train.max_lr=3e-3", "train.min_lr=3e-4", "train.warmup_steps=0", "train.eval_every=20",
        "train.log_every=20", "train.progress=false", "train.device=cpu", "train.checkpoint_every=0"]


def test_bradley_terry_is_the_formula():
    c, r = torch.tensor([1.5, -0.5, 0.2]), torch.tensor([0.5, 0.5, 0.2])
    loss, metrics = bradley_terry(c, r)
    want = sum(-math.log(1 / (1 + math.exp(-(a - b)))) for a, b in zip(c.tolist(), r.tolist())) / 3
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert metrics["accuracy"].item() == pytest.approx(1 / 3) and metrics["margin"].item() == pytest.approx(0.0, abs=1e-7)


def test_score_reads_the_last_real_token_and_ignores_padding():
    torch.manual_seed(0)
    rm = RewardModel(tiny_model())
    torch.nn.init.normal_(rm.head.weight)          # a head that is not zero, so scores differ
    tok = byte_tokenizer()
    pairs = [Pair([{"role": "user", "content": "q" * n}], "a" * (n + 1), "b" * (4 - n)) for n in range(4)]
    examples, _ = encode_pairs(tok, pairs, block_size=48)
    batch = collate_pairs(examples)
    with torch.no_grad():
        scores = rm(batch["inputs"], lengths=last_token_lengths(batch["targets"]))
    alone = [rm.score(tok, p.prompt, p.chosen) for p in pairs] + [rm.score(tok, p.prompt, p.rejected) for p in pairs]
    assert torch.allclose(scores, torch.tensor(alone), atol=1e-5)
    assert len(set(round(s, 4) for s in alone)) == len(alone)


def test_reward_model_learns_the_rule(tmp_path, capsys):
    make_run(tmp_path / "sft")
    write_jsonl(tmp_path / "train.jsonl", rule_pairs(64, seed=0))
    write_jsonl(tmp_path / "held.jsonl", rule_pairs(32, seed=1))
    out = tmp_path / "rm"
    assert main(["align", "reward", "--run", str(tmp_path / "sft"), "--data", str(tmp_path / "train.jsonl"),
                 "--val-data", str(tmp_path / "held.jsonl"), "--out", str(out), *FAST]) == 0
    assert "held-out pair accuracy" in capsys.readouterr().out
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["val_accuracy"] >= 0.9
    run = scratchllm.load(out)
    assert isinstance(run.model, RewardModel)
    held = rule_pairs(32, seed=2)
    wins = [run.model.score(run.tokenizer, p["prompt"], p["chosen"]) > run.model.score(run.tokenizer, p["prompt"], p["rejected"])
            for p in held]
    assert sum(wins) / len(wins) >= 0.9


def test_pairs_ranks_sampled_replies_with_the_reward_model(tmp_path):
    """A reward model trained on the rule ranks sampled replies: every built pair agrees with the model's scores."""
    make_run(tmp_path / "sft")
    write_jsonl(tmp_path / "train.jsonl", rule_pairs(48, seed=0))
    rm_argv = ["align", "reward", "--run", str(tmp_path / "sft"), "--data", str(tmp_path / "train.jsonl"),
               "--out", str(tmp_path / "rm"), *FAST, "train.max_steps=10", "train.eval_every=0"]
    assert main(rm_argv) == 0
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p["prompt"]} for p in rule_pairs(6, seed=3)])
    out = tmp_path / "built.jsonl"
    assert main(["align", "pairs", "--run", str(tmp_path / "sft"), "--reward", str(tmp_path / "rm"), "--prompts",
                 str(tmp_path / "prompts.jsonl"), "--out", str(out), "--k", "3", "--max-new-tokens", "6"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    rm = scratchllm.load(tmp_path / "rm")
    for row in rows:
        assert row["chosen"] != row["rejected"]
        assert rm.model.score(rm.tokenizer, row["prompt"], row["chosen"]) > rm.model.score(rm.tokenizer, row["prompt"], row["rejected"])


def test_a_reward_model_with_another_tokenizer_is_refused(tmp_path):
    make_run(tmp_path / "sft")
    other = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4", {s: 300 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})
    save_run_weights(tmp_path / "rm", RewardModel(tiny_model()), other)
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "abc"}])
    with pytest.raises(UserError, match="uses another tokenizer"):
        build_pairs(tmp_path / "sft", tmp_path / "prompts.jsonl", tmp_path / "out.jsonl", reward=tmp_path / "rm")
    assert not (tmp_path / "out.jsonl").exists()
