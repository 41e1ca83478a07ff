"""Readers for the generative tasks: GSM8K, HumanEval and a user's `{prompt, answer}` file.

GSM8K prompts are lm-eval's "Question: …\\nAnswer:"; few-shot examples show the full worked
answers (chain of thought ending in "#### N"). HumanEval items keep the function's signature and
docstring as the prompt and its tests as the reference.

>>> import gzip, json, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "g.jsonl"
>>> _ = p.write_text(json.dumps({"question": "1+1?", "answer": "1+1=2\\n#### 2"}) + "\\n")
>>> read_gsm8k(p)[0].prompt
'Question: 1+1?\\nAnswer:'
"""

from __future__ import annotations

from pathlib import Path

from scratchllm.eval.tasks.base import GenItem, read_jsonl_rows

GSM8K_STOP = ["Question:", "</s>", "<|im_end|>", "\n\n"]
HUMANEVAL_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
USER_STOP = ["\n"]


def read_gsm8k(path: Path) -> list[GenItem]:
    return [GenItem(f"Question: {row['question']}\nAnswer:", " " + row["answer"].strip())
            for _, row in read_jsonl_rows(path, ("question", "answer"))]


def read_humaneval(path: Path) -> list[GenItem]:
    return [GenItem(row["prompt"], row["test"], row["entry_point"])
            for _, row in read_jsonl_rows(path, ("prompt", "test", "entry_point"))]


def read_prompt_answer(path: Path) -> list[GenItem]:
    return [GenItem(str(row["prompt"]), " " + str(row["answer"]).strip())
            for _, row in read_jsonl_rows(path, ("prompt", "answer"))]
