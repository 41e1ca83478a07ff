"""Reading a prompts file for batched generation: one JSON object a line, `{"prompt": ...}`.

Each line may also set its own `max_new_tokens`, `temperature`, `top_k`, `top_p`, `seed` and
`stop` (a string or a list of strings); what a line leaves out comes from `defaults` (the
command line's settings). Every problem is one sentence naming the file, the line and the fix.

>>> import json, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "p.jsonl")
>>> _ = open(path, "w").write(json.dumps({"prompt": "Hi", "seed": 3}) + "\\n\\n" + json.dumps({"prompt": "Yo"}) + "\\n")
>>> prompts, settings = read_prompts_file(path, {"max_new_tokens": 5, "temperature": 0.8})
>>> prompts, settings[0]
(['Hi', 'Yo'], {'max_new_tokens': 5, 'temperature': 0.8, 'seed': 3})
"""

from __future__ import annotations

import json
from pathlib import Path

from scratchllm.errors import UserError

FIELDS = {"max_new_tokens": int, "temperature": (int, float), "top_k": int, "top_p": (int, float),
          "seed": int, "stop": (str, list)}


def read_prompts_file(path: str | Path, defaults: dict) -> tuple[list[str], list[dict]]:
    """(prompts, per-prompt settings) in file order; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompts file '{path}' does not exist; check the path")
    prompts, settings = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {number} is not JSON ({e.msg}); write one {{\"prompt\": ...}} object a line")
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise UserError(f"{path} line {number} has no \"prompt\" string; write one {{\"prompt\": ...}} object a line")
        prompts.append(row.pop("prompt"))
        settings.append({**defaults, **_check_fields(row, path, number)})
    if not prompts:
        raise UserError(f"prompts file '{path}' has no prompts; put one {{\"prompt\": ...}} object on each line")
    return prompts, settings


def _check_fields(row: dict, path: Path, number: int) -> dict:
    for key, value in row.items():
        if key not in FIELDS:
            raise UserError(f"{path} line {number} has an unknown field '{key}'; "
                            f"use prompt and any of {', '.join(FIELDS)}")
        if value is not None and (not isinstance(value, FIELDS[key]) or isinstance(value, bool)):
            raise UserError(f"{path} line {number}: '{key}' has the wrong type ({type(value).__name__}); "
                            f"see `scratchllm generate --help`")
    if isinstance(row.get("stop"), str):
        row["stop"] = [row["stop"]]
    return row
