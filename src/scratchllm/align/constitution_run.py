"""`scratchllm align constitution`: run constitutional AI over a prompts file into a resumable directory.

The model is a run (`RunChat`: `inference/chat.reply_batch`, a batch of prompts at a time) or
any OpenAI-compatible chat endpoint (`EndpointChat`: `eval/endpoint.chat_completion`, one
request at a time). Prompts are JSONL with a "prompt" string a line: `{"prompt"}` files and the
red-team suite's `{id, category, prompt, ...}` both read; a row's "id" (else a digest of its
text) names it, and other fields are kept in the transcript. Writes, in DIR:

    transcript.jsonl   one record a prompt: every step's messages and text (for inspection)
    sft.jsonl          {"messages": [user prompt, assistant final revision]}   -> scratchllm finetune
    pairs.jsonl        {"prompt", "chosen": revision, "rejected": original}    -> scratchllm align dpo

Resumable: each batch's records are appended as whole lines (one write, then fsync), the
transcript last; a rerun reads the transcript (dropping a torn last line), rebuilds sft.jsonl and
pairs.jsonl from it atomically, and skips the prompts it holds. A crash, Ctrl-C or an endpoint
that goes away loses at most the batch in flight; what is on disk stays valid.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "p.jsonl").write_text(json.dumps({"prompt": "hi"}) + "\\n")
>>> shout = lambda convs, seeds: [c[-1]["content"].upper() for c in convs]
>>> stats = run_constitution(shout, d / "p.jsonl", d / "out", quiet=True)
>>> stats["revised"], stats["pairs"], sorted(p.name for p in (d / "out").iterdir())
(1, 1, ['pairs.jsonl', 'sft.jsonl', 'transcript.jsonl'])
>>> run_constitution(shout, d / "p.jsonl", d / "out", quiet=True)["resumed"]   # done prompts are skipped
1
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tqdm import tqdm

from scratchllm.align.constitution import Chat, pair_row, read_constitution, revise, sft_row
from scratchllm.errors import UserError
from scratchllm.eval.endpoint import chat_completion
from scratchllm.eval.tasks.base import read_jsonl_rows
from scratchllm.inference.chat import reply_batch
from scratchllm.tokenizer.special import render_conversation
from scratchllm.utils.atomic import atomic_write_jsonl, named_os_errors
from scratchllm.utils.outdir import check_output_dir, removed_on_failure

OUTPUTS = ("transcript.jsonl", "sft.jsonl", "pairs.jsonl")


class RunChat:
    """A run's model as `Chat`: each batch of conversations in one `reply_batch` call."""

    def __init__(self, run, max_new_tokens: int = 128, temperature: float = 0.7):
        if run.tokenizer is None:
            raise UserError("the run has no tokenizer.json; constitutional AI needs a run with a chat tokenizer")
        self.model, self.tokenizer = run.model, run.tokenizer
        self.max_new_tokens, self.temperature = max_new_tokens, temperature

    def __call__(self, conversations: list[list[dict]], seeds: list[int]) -> list[str | None]:
        block = self.model.config.block_size
        # a conversation that leaves no room for one new token cannot be answered: None, not an error
        fits = [len(render_conversation(self.tokenizer, c, for_completion=True)[0]) < block for c in conversations]
        replies = iter(reply_batch(self.model, self.tokenizer, [c for c, ok in zip(conversations, fits) if ok],
                                   self.max_new_tokens, self.temperature,
                                   seeds=[s for s, ok in zip(seeds, fits) if ok]))
        return [next(replies) if ok else None for ok in fits]


class EndpointChat:
    """An OpenAI-compatible chat endpoint as `Chat` (POST URL/v1/chat/completions, seeded)."""

    def __init__(self, url: str, model: str = "default", max_new_tokens: int = 128, temperature: float = 0.7,
                 retries: int = 3, timeout: float = 120.0):
        self.url, self.model, self.retries, self.timeout = url, model, retries, timeout
        self.max_new_tokens, self.temperature = max_new_tokens, temperature

    def __call__(self, conversations: list[list[dict]], seeds: list[int]) -> list[str | None]:
        return [chat_completion(self.url, self.model, messages, self.temperature, self.max_new_tokens, seed,
                                self.retries, self.timeout) for messages, seed in zip(conversations, seeds)]


def prompt_id(row: dict) -> str:
    """A row's "id" when it has one, else a digest of its prompt text (stable across runs)."""
    if row.get("id") is not None:
        return str(row["id"])
    return "sha256:" + hashlib.sha256(row["prompt"].encode()).hexdigest()[:16]


def read_prompt_rows(path: str | Path) -> list[dict]:
    """The prompts file's rows, each with its "id"; a prompt (id) given twice is kept once."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompts file '{path}' does not exist; pass a JSONL file with a \"prompt\" string a line")
    rows: dict[str, dict] = {}
    for line, row in read_jsonl_rows(path, ("prompt",)):
        if not isinstance(row["prompt"], str) or not row["prompt"].strip():
            raise UserError(f"'{path}' line {line}: \"prompt\" must be a non-empty string")
        rows.setdefault(prompt_id(row), {**row, "id": prompt_id(row)})
    if not rows:
        raise UserError(f"prompts file '{path}' has no prompts; put one {{\"prompt\": ...}} object on each line")
    return list(rows.values())


def read_transcript(path: Path) -> list[dict]:
    """The whole records of a transcript; a torn last line (a crash mid-append) is cut off the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, good = [], 0
    for n, line in enumerate(lines):
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            if n == len(lines) - 1:      # no newline after it: the append did not finish
                raise ValueError
            records.append(json.loads(line))
        except ValueError:
            if n < len(lines) - 2:
                raise UserError(f"'{path}' line {n + 1} is not a whole JSON record; remove that line (and what "
                                "follows) to resume") from None
            break
        good += len(line) + 1
    if good < len(data):
        with named_os_errors(path), open(path, "r+b") as f:
            f.truncate(good)
    return records


def append_lines(path: Path, rows: list[dict]) -> None:
    """Append `rows` as JSON lines in one write, flushed to disk before returning."""
    if not rows:
        return
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with named_os_errors(path), open(path, "ab") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _derived(records: list[dict]) -> tuple[list[dict], list[dict]]:
    sft = [r for r in map(sft_row, records) if r is not None]
    pairs = [r for r in map(pair_row, records) if r is not None]
    return sft, pairs


def run_constitution(chat: Chat, prompts_path, out, constitution=None, rounds: int = 1, seed: int = 0,
                     batch_size: int = 16, force: bool = False, quiet: bool = False) -> dict:
    """Critique and revise every prompt not yet in OUT/transcript.jsonl; returns the counts."""
    out = check_output_dir(out, OUTPUTS, force=force)
    principles = read_constitution(constitution)
    if batch_size < 1 or rounds < 1:
        what, value = ("--batch-size", batch_size) if batch_size < 1 else ("--rounds", rounds)
        raise UserError(f"{what} must be at least 1, got {value}")
    rows = read_prompt_rows(prompts_path)
    written = lambda d: (d / "transcript.jsonl").is_file() and (d / "transcript.jsonl").stat().st_size > 0
    with removed_on_failure(out, keep=written):
        out.mkdir(parents=True, exist_ok=True)
        records = read_transcript(out / "transcript.jsonl")
        sft, pairs = _derived(records)   # rebuilt from the transcript: a crash between appends heals here
        atomic_write_jsonl(out / "sft.jsonl", sft)
        atomic_write_jsonl(out / "pairs.jsonl", pairs)
        done = {r["id"] for r in records}
        todo = [r for r in rows if r["id"] not in done]
        bar = tqdm(total=len(todo), desc="constitution", disable=quiet, leave=False)
        for start in range(0, len(todo), batch_size):
            batch = revise(chat, todo[start:start + batch_size], principles, rounds, seed)
            new_sft, new_pairs = _derived(batch)
            append_lines(out / "sft.jsonl", new_sft)
            append_lines(out / "pairs.jsonl", new_pairs)
            append_lines(out / "transcript.jsonl", batch)   # last: a prompt is done once its record is here
            records += batch
            bar.update(len(batch))
        bar.close()
    sft, pairs = _derived(records)
    in_file = {r["id"] for r in rows}
    new = records[len(records) - len(todo):] if todo else []
    return {"prompts": len(rows), "resumed": len(in_file & done), "revised": sum(r["status"] == "done" for r in new),
            "too_long": sum(r["status"] == "context" for r in records),
            "sft": len(sft), "pairs": len(pairs),
            "unchanged": sum(r["status"] == "done" and pair_row(r) is None for r in records)}
