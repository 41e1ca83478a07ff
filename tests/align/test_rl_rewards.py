"""The verifiable rewards on real GSM8K lines (the reference's own "#### N" must score 1, a wrong number 0),
the format check, and the code reward through the sandbox."""

from __future__ import annotations

import json

import pytest
from shared_data import require_shared

from scratchllm.align.rewards import (code_reward, exact_reward, format_reward, gsm8k_reward, number_reward,
                                      reference_number, resolve_reward)
from scratchllm.errors import UserError


def _gsm8k(n: int) -> list[dict]:
    path = require_shared("sft/gsm8k_train.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_gsm8k_reward_on_real_lines():
    items = _gsm8k(50)
    for item in items:
        final = item["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert reference_number(item) == final
        assert gsm8k_reward(item["answer"], item) == 1.0              # the worked solution itself
        assert gsm8k_reward(f"So the answer is\n#### {int(final) + 1}", item) == 0.0
        assert gsm8k_reward(f"the answer is {final}", item) == 0.0    # strict: no "####", no reward
        assert number_reward(f"the answer is {final}.", item) == 1.0  # flexible: the last number
        assert format_reward(item["answer"], item) == 1.0
    assert gsm8k_reward("#### 72", items[0]) == 1.0 and gsm8k_reward("#### 72.00", items[0]) == 1.0
    assert format_reward("72 clips", items[0]) == 0.0 and format_reward("#### 72\nmore text", items[0]) == 0.0


def test_sums_and_names():
    item = {"prompt": "2+2=", "answer": "4"}
    assert resolve_reward("gsm8k+format")("#### 4", item) == 2.0
    assert resolve_reward("format")("#### 5", item) == 1.0
    assert exact_reward(" 4 ", item) == 1.0 and exact_reward("4.", item) == 0.0
    with pytest.raises(UserError, match="unknown reward 'gsm9k'"):
        resolve_reward("gsm9k")


def test_code_reward_runs_the_tests_in_the_sandbox():
    item = {"prompt": "Write add(a, b).", "test": "assert add(2, 3) == 5\nassert add(-1, 1) == 0"}
    assert code_reward("def add(a, b):\n    return a + b", item) == 1.0
    assert code_reward("def add(a, b):\n    return a - b", item) == 0.0
    assert code_reward("def add(a, b):\n    while True: pass", item, timeout=1.0) == 0.0
    humaneval = {"prompt": "def inc(x):\n", "test": "def check(f):\n    assert f(1) == 2", "entry_point": "inc"}
    assert code_reward("    return x + 1\n", humaneval) == 1.0
    assert code_reward("    return x\n", humaneval) == 0.0
