"""Instruction and chat data: files of conversations -> token rows with a loss mask, packed.

Four layouts are read from .json (an array) or .jsonl (one record a line, .gz/.xz too):

    alpaca     {"instruction", "input", "output"}                 (+ optional "system")
    gpteacher  {"instruction", "input", "response"}
    sharegpt   {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
    openai     {"messages": [{"role": "user"|"assistant"|"system", "content"}]}

`detect_format` picks one from the first record's keys (or pass `fmt`). Each conversation is
rendered with the tokenizer's chat template (`tokenizer.special.render_conversation`) and
shifted into (inputs, targets) with targets = -100 wherever the mask is 0: the loss falls only
on the assistant's tokens (and its `<|assistant_end|>`), never on the prompt.

Packing: several conversations share one row of `block_size` tokens. Each keeps its own
positions (restarting at 0) and a block-diagonal causal mask keeps attention inside it, both
through the model's `positions=` and `attn_mask=` arguments. We pack rather than pad because
padding wastes the row (Alpaca replies are ~100 tokens, a row 256-1024); we reset positions as
well as masking because a conversation must look to the model exactly as it would alone (a
document at position 300 is not one at position 0 under RoPE's or learned positions), which is
what the test "packed rows give the same loss as one conversation per row" pins.
A conversation longer than a row is cut at `block_size` and counted in `ChatStats.truncated`.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4",
...                 {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})
>>> convs = [to_messages({"instruction": "hi", "input": "", "output": "yo"}, "alpaca")]
>>> convs[0]
[{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'yo'}]
>>> examples, stats = encode_conversations(tok, convs * 3, block_size=16)
>>> rows = pack(examples, block_size=16)
>>> len(rows), rows[0].doc.tolist()
(2, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
>>> rows[0].targets.tolist()[:8]
[-100, -100, -100, -100, -100, 121, 111, 263]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from scratchllm.data.loader import ShuffledEpochs
from scratchllm.data.sources import open_text
from scratchllm.data.tokenize import is_val
from scratchllm.errors import UserError
from scratchllm.tokenizer.special import render_conversation

FORMATS = ("alpaca", "gpteacher", "sharegpt", "openai")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "system": "system"}


def read_records(path: str | Path) -> list[dict]:
    """The records of a .json array or a .jsonl file (compressed or not)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"chat data '{path}' does not exist; pass a .json or .jsonl file of conversations")
    with open_text(path) as f:
        text = f.read()
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise UserError(f"'{path}' is not valid JSON or JSONL ({e}); fix the file") from None
    if not records or not all(isinstance(r, dict) for r in records):
        raise UserError(f"'{path}' holds no JSON objects; give one conversation record per item")
    return records


def detect_format(record: dict) -> str:
    """The layout of one record, from its keys."""
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "instruction" in record and "response" in record:
        return "gpteacher"
    raise UserError(f"cannot tell the chat format of a record with keys {sorted(record)}; pass --format "
                    f"(one of {', '.join(FORMATS)})")


def _prompt(record: dict) -> str:
    instruction, extra = str(record.get("instruction", "")), str(record.get("input") or "")
    return f"{instruction}\n\n{extra}" if extra.strip() else instruction


def to_messages(record: dict, fmt: str) -> list[dict]:
    """One record as `[{"role", "content"}, ...]` in the given layout."""
    if fmt in ("alpaca", "gpteacher"):
        reply = record.get("output" if fmt == "alpaca" else "response")
        system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        return system + [{"role": "user", "content": _prompt(record)}, {"role": "assistant", "content": reply}]
    if fmt == "sharegpt":
        turns = record.get("conversations") or []
        return [{"role": SHAREGPT_ROLES.get(t.get("from"), t.get("from")), "content": t.get("value")} for t in turns]
    if fmt == "openai":
        return [{"role": m.get("role"), "content": m.get("content")} for m in record.get("messages") or []]
    raise UserError(f"unknown chat format {fmt!r}; use one of {', '.join(FORMATS)} (or auto)")


def fill_placeholders(messages: list[dict], values: dict[str, str]) -> list[dict]:
    """Replace `{{key}}` in every message (the identity set's `{{name}}` and `{{author}}`)."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            for key, value in values.items():
                content = content.replace("{{" + key + "}}", value)
        out.append({**m, "content": content})
    return out


def load_conversations(path: str | Path, fmt: str = "auto", placeholders: dict[str, str] | None = None) -> list[list[dict]]:
    """Every conversation of a file as message lists; each must have an assistant turn to learn from."""
    records = read_records(path)
    fmt = detect_format(records[0]) if fmt == "auto" else fmt
    convs = []
    for n, record in enumerate(records):
        messages = to_messages(record, fmt)
        if not any(m["role"] == "assistant" and isinstance(m["content"], str) for m in messages):
            raise UserError(f"record {n} of '{path}' has no assistant turn, so there is nothing to learn; "
                            f"fix or remove it (or check --format, read as {fmt})")
        convs.append(fill_placeholders(messages, placeholders or {}))
    return convs


def split_heldout(items: list, val_fraction: float, seed: int = 0, what: str = "conversations",
                  fix: str = "another finetune.val_fraction") -> tuple[list, list]:
    """(train, held_out): item i is held out iff hash(seed, i) < val_fraction (stable across runs).

    Conversations here, preference pairs in data/preference.py; `what` and `fix` word the error.
    """
    train = [c for i, c in enumerate(items) if not is_val(i, seed, val_fraction)]
    held = [c for i, c in enumerate(items) if is_val(i, seed, val_fraction)]
    if not train or not held:
        raise UserError(f"{len(items)} {what} with val_fraction={val_fraction} leave an empty "
                        f"train or held-out split; use more data or {fix}")
    return train, held


@dataclass
class Example:
    """One conversation shifted for next-token prediction: inputs, and targets (-100 = no loss)."""
    inputs: list[int]
    targets: list[int]


@dataclass
class ChatStats:
    conversations: int = 0
    truncated: int = 0          # cut at block_size: their tail is lost
    dropped: int = 0            # nothing of the assistant's left after the cut
    tokens: int = 0
    assistant_tokens: int = 0   # tokens that carry loss

    def summary(self) -> str:
        return (f"{self.conversations:,} conversations, {self.tokens:,} tokens ({self.assistant_tokens:,} trained on); "
                f"{self.truncated:,} truncated at block_size, {self.dropped:,} dropped (no reply left)")


def encode_conversations(tokenizer, convs: list[list[dict]], block_size: int) -> tuple[list[Example], ChatStats]:
    """Render, shift and cut each conversation to at most `block_size` positions; count what is cut."""
    stats = ChatStats()
    examples = []
    for messages in convs:
        ids, mask = render_conversation(tokenizer, messages)
        inputs = ids[:-1]
        targets = [t if m else -100 for t, m in zip(ids[1:], mask[1:])]
        if len(inputs) > block_size:
            stats.truncated += 1
            inputs, targets = inputs[:block_size], targets[:block_size]
        learned = sum(t != -100 for t in targets)
        if not learned:
            stats.dropped += 1
            continue
        stats.conversations += 1
        stats.tokens += len(inputs)
        stats.assistant_tokens += learned
        examples.append(Example(inputs, targets))
    return examples, stats


@dataclass
class PackedRow:
    """One row of block_size: inputs, targets, per-token position and conversation index (-1 = padding)."""
    inputs: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor
    doc: torch.Tensor


def pack(examples: list[Example], block_size: int) -> list[PackedRow]:
    """Fill rows greedily in order; a conversation that does not fit starts the next row."""
    rows, current = [], []

    def close():
        inputs, targets, positions, doc = [], [], [], []
        for n, ex in enumerate(current):
            inputs += ex.inputs
            targets += ex.targets
            positions += range(len(ex.inputs))
            doc += [n] * len(ex.inputs)
        pad = block_size - len(inputs)
        rows.append(PackedRow(torch.tensor(inputs + [0] * pad), torch.tensor(targets + [-100] * pad),
                              torch.tensor(positions + [0] * pad), torch.tensor(doc + [-1] * pad)))

    used = 0
    for ex in examples:
        if current and used + len(ex.inputs) > block_size:
            close()
            current, used = [], 0
        current.append(ex)
        used += len(ex.inputs)
    if current:
        close()
    return rows


def block_diagonal_mask(doc: torch.Tensor) -> torch.Tensor:
    """[B, T] conversation indices -> bool [B, T, T]: a token may attend only within its conversation.

    The model ANDs this with causality, so each block is a causal triangle.
    """
    return doc[:, :, None] == doc[:, None, :]


def collate(rows: list[PackedRow]) -> dict[str, torch.Tensor]:
    """Rows -> a batch dict the loop counts by its "targets" and the chat loss reads."""
    return {name: torch.stack([getattr(r, name) for r in rows]) for name in ("inputs", "targets", "positions", "doc")}


@dataclass
class ChatBatches(ShuffledEpochs):
    """Endless shuffled batches of packed rows; `state_dict()` makes a resumed run see the same ones."""
    rows: list[PackedRow]
    batch_size: int
    seed: int = 0
    epoch: int = 0
    index: int = 0

    def __post_init__(self):
        if not self.rows:
            raise UserError("no training rows after encoding the chat data; check the data and block_size")
        self._start(len(self.rows))

    def __next__(self) -> dict[str, torch.Tensor]:
        return collate([self.rows[i] for i in self._next_indices()])


def fixed_batches(rows: list[PackedRow], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Held-out rows in order, as the loop's fixed validation batches."""
    return [collate(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
