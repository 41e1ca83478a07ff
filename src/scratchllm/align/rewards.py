"""Verifiable rewards for GRPO: small Python callables that score a reply against its data item.

A reward is `fn(reply: str, item: dict) -> float`, where `item` is the data line the prompt came
from (`align/rollout.py` reads it: "prompt" or "question", "answer", and whatever else the line
holds, e.g. "test" for code). No learned model is involved, so there is nothing to hack but the
check itself — which is why the checks are strict:

- `gsm8k`: 1 if the number after the reply's "#### " equals the reference's (GSM8K's own answer
  format; numbers normalised by `eval/answers.py`, as the evaluation reads them), else 0.
- `number`: 1 if the last number anywhere in the reply equals the reference's (lm-eval's
  "flexible" extraction), else 0: for models not yet trained to write "####".
- `format`: 1 if the reply ends its reasoning with a "#### N" line, whatever N is (a shaping
  reward that teaches the format; DeepSeek-R1's format reward plays the same role).
- `exact`: 1 if the reply, stripped, equals the answer, stripped.
- `code`: 1 if the reply (a Python program or function) passes the item's "test" code in the
  sandbox of `eval/code_exec.py` (HumanEval layout when the item has "entry_point"), else 0.

Names combine with "+", each term summed: `gsm8k+format` pays 2 for a correct, well-formed reply.

>>> item = {"question": "2+2?", "answer": "2 plus 2 is 4.\\n#### 4"}
>>> gsm8k_reward("It is 2 + 2 = 4.\\n#### 4", item), gsm8k_reward("#### 5", item), number_reward("so 4", item)
(1.0, 0.0, 1.0)
>>> resolve_reward("gsm8k+format")("#### 4", item)
2.0
"""

from __future__ import annotations

import re
from typing import Callable

from scratchllm.errors import UserError
from scratchllm.eval.answers import extract_gsm8k, normalize_number
from scratchllm.eval.code_exec import humaneval_program, run_program

RewardFn = Callable[[str, dict], float]
_FORMAT = re.compile(r"####\s*-?\$?[0-9][0-9,]*(?:\.[0-9]+)?\s*$")


def reference_number(item: dict) -> str | None:
    """The item's answer as a normalised number: after "####" (GSM8K's references) or the whole answer."""
    answer = str(item.get("answer", ""))
    found = extract_gsm8k(answer)
    if found is not None:
        return found
    stripped = answer.strip()
    return normalize_number(stripped) if stripped else None


def gsm8k_reward(reply: str, item: dict) -> float:
    got = extract_gsm8k(reply, strict=True)
    return float(got is not None and got == reference_number(item))


def number_reward(reply: str, item: dict) -> float:
    got = extract_gsm8k(reply, strict=False)
    return float(got is not None and got == reference_number(item))


def format_reward(reply: str, item: dict) -> float:
    return float(bool(_FORMAT.search(reply.strip())))


def exact_reward(reply: str, item: dict) -> float:
    return float(reply.strip() == str(item.get("answer", "")).strip())


def code_reward(reply: str, item: dict, timeout: float = 5.0) -> float:
    """1.0 if the reply passes the item's tests ("test"; with "entry_point", HumanEval's `check(f)`)."""
    if "entry_point" in item:
        program = humaneval_program(item.get("prompt", ""), reply, item["test"], item["entry_point"])
    else:
        program = f"{reply}\n\n{item['test']}\n"
    return float(run_program(program, timeout=timeout).passed)


REWARDS: dict[str, RewardFn] = {"gsm8k": gsm8k_reward, "number": number_reward, "format": format_reward,
                                "exact": exact_reward, "code": code_reward}
# What each reward reads from a data line, so a file without it is refused before any sampling.
NEEDS = {"gsm8k": "answer", "number": "answer", "exact": "answer", "code": "test"}


def resolve_reward(name: str) -> RewardFn:
    """The reward named `name` ("gsm8k", or a sum such as "gsm8k+format")."""
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in REWARDS]
    if unknown or not parts:
        raise UserError(f"unknown reward '{unknown[0] if unknown else name}'; use one of {', '.join(REWARDS)} "
                        "(or a sum such as gsm8k+format)")
    fns = [REWARDS[p] for p in parts]
    return fns[0] if len(fns) == 1 else lambda reply, item: sum(fn(reply, item) for fn in fns)


def required_field(name: str) -> list[str]:
    """The data fields the reward `name` reads (besides the prompt)."""
    return sorted({NEEDS[p.strip()] for p in name.split("+") if p.strip() in NEEDS})
