"""Constitutional AI's supervised stage (Bai et al. 2022): reply, critique against a principle, revise.

A constitution is a TOML file of principles, each a critique request and a revision request:

    [[principle]]
    name = "honesty"                       # optional; shown in the transcript
    critique = "Find the claims in the assistant's last reply that are false ..."
    revision = "Rewrite the reply so that every claim is true ..."

(the default, `align/data/constitution.toml`, is the project's own). For each prompt the model
writes a reply; then, for each of n rounds, a principle is drawn (seeded by the seed, the
prompt's id and the round, so the draw is the same whatever the batch or the resume), and the
model is asked, as chat turns after the exchange,

    critique: [user: prompt] [assistant: reply] [user: critique request]                    -> critique
    revision: ... the same ... [assistant: critique] [user: revision request]                -> revision

The revision becomes the reply of the next round. Each round sees the prompt and the latest
reply only, not earlier rounds: the context stays bounded, which a small model's short context
needs. The final revision is SFT data (`sft_row`) and (original, revision) a preference pair,
revision preferred (`pair_row`, RLAIF's pairs for `align dpo`).

This module knows principles, conversations and records; the model behind `chat` (a run through
the batched engine, or an endpoint) and the files are `constitution_run.py`'s.

>>> principles = parse_constitution({"principle": [{"critique": "Is it rude?", "revision": "Make it polite."}]})
>>> echo = lambda convs, seeds: [c[-1]["content"].upper() for c in convs]    # a "model" that shouts back
>>> record = revise(echo, [{"id": "1", "prompt": "hi"}], principles, rounds=1, seed=0)[0]
>>> [s["step"] for s in record["steps"]], record["original"], record["revision"]
(['reply', 'critique', 'revision'], 'HI', 'MAKE IT POLITE.')
>>> pair_row(record)
{'prompt': 'hi', 'chosen': 'MAKE IT POLITE.', 'rejected': 'HI'}
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from scratchllm.errors import UserError
from scratchllm.utils.files import read_toml

# chat(conversations, seeds) -> the next assistant reply of each, or None where one cannot be
# answered (it does not fit the model's context).
Chat = Callable[[list[list[dict]], list[int]], list[str | None]]
PRINCIPLE_KEYS = {"name", "critique", "revision"}


@dataclass(frozen=True)
class Principle:
    name: str
    critique: str
    revision: str


def default_constitution() -> Path:
    return Path(str(resources.files("scratchllm.align") / "data" / "constitution.toml"))


def parse_constitution(doc: dict, source: str = "the constitution") -> list[Principle]:
    """The principles of a parsed constitution file ({"principle": [tables]})."""
    tables = doc.get("principle")
    if not isinstance(tables, list) or not tables:
        raise UserError(f"{source} has no principles; add [[principle]] tables, each with a critique and a "
                        "revision request")
    principles = []
    for n, table in enumerate(tables, start=1):
        where = f"{source}, principle {n}"
        if not isinstance(table, dict):
            raise UserError(f"{where} is not a table; write each principle as a [[principle]] table")
        unknown = sorted(set(table) - PRINCIPLE_KEYS)
        if unknown:
            raise UserError(f"{where} has an unknown key '{unknown[0]}'; a principle takes name, critique, revision")
        for key in ("critique", "revision"):
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise UserError(f"{where} has no {key} request; give it a non-empty '{key}' string")
        principles.append(Principle(str(table.get("name", f"principle {n}")), table["critique"].strip(),
                                    table["revision"].strip()))
    return principles


def read_constitution(path: str | Path | None = None) -> list[Principle]:
    """The principles of the constitution file at `path` (None: the default one)."""
    path = Path(path) if path is not None else default_constitution()
    return parse_constitution(read_toml(path, "constitution"), f"constitution '{path}'")


def _digest(*parts) -> int:
    # sha256, not hash(): Python salts str hashes per process, and draws must repeat across runs
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def principle_for(principles: list[Principle], seed: int, prompt_id: str, round_: int) -> Principle:
    """The principle drawn for one prompt's round: a function of (seed, prompt id, round) alone."""
    return random.Random(_digest(seed, prompt_id, round_)).choice(principles)


def step_seed(seed: int, prompt_id: str, step: str) -> int:
    """The sampling seed of one step of one prompt (non-negative, as OpenAI-compatible servers want)."""
    return _digest(seed, prompt_id, step) % 2**31


def critique_messages(prompt: str, reply: str, principle: Principle) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply},
            {"role": "user", "content": principle.critique}]


def revision_messages(prompt: str, reply: str, principle: Principle, critique: str) -> list[dict]:
    return critique_messages(prompt, reply, principle) + [{"role": "assistant", "content": critique},
                                                          {"role": "user", "content": principle.revision}]


def _ask(chat: Chat, states: list[dict], step: str, messages_of: Callable[[dict], list[dict]], seed: int,
         round_: int = 0, drawn: dict[str, Principle] | None = None) -> None:
    """One step for every state still going (no step failed yet), in one batch to `chat`; each
    state's transcript gets the step's messages, text and (from round 1 on) the principle."""
    going = [s for s in states if s["status"] == "done"]
    conversations = [messages_of(s) for s in going]
    texts = chat(conversations, [step_seed(seed, s["id"], f"{step}{round_}") for s in going])
    for state, messages, text in zip(going, conversations, texts):
        entry = {"step": step}
        if round_:
            entry.update(round=round_, principle=drawn[state["id"]].name)
        state["steps"].append({**entry, "messages": messages, "text": text})
        if text is None:
            state["status"] = "context"   # this step did not fit the context: the prompt ends here


def revise(chat: Chat, items: list[dict], principles: list[Principle], rounds: int = 1, seed: int = 0) -> list[dict]:
    """One record per item ({"id", "prompt", ...}): every step's messages and text, the original
    reply, the final revision and a status ("done", or "context" when a step did not fit)."""
    if rounds < 1:
        raise UserError(f"--rounds must be at least 1 (one critique and one revision), got {rounds}")
    states = [{**item, "status": "done", "steps": []} for item in items]
    _ask(chat, states, "reply", lambda s: [{"role": "user", "content": s["prompt"]}], seed)
    for s in states:
        s["original"] = s["revision"] = s["steps"][0]["text"]
    for r in range(1, rounds + 1):
        drawn = {s["id"]: principle_for(principles, seed, s["id"], r) for s in states}
        _ask(chat, states, "critique", lambda s: critique_messages(s["prompt"], s["revision"], drawn[s["id"]]),
             seed, r, drawn)
        # the revision request follows the critique the model has just written (the state's last step)
        _ask(chat, states, "revision",
             lambda s: revision_messages(s["prompt"], s["revision"], drawn[s["id"]], s["steps"][-1]["text"]),
             seed, r, drawn)
        for s in states:
            if s["status"] == "done":
                s["revision"] = s["steps"][-1]["text"]
    for s in states:
        if s["status"] != "done":
            s["original"] = s["revision"] = None
    return states


def sft_row(record: dict) -> dict | None:
    """The prompt and its final revision as a chat conversation (`scratchllm finetune`'s openai layout)."""
    if record["status"] != "done" or not record["revision"].strip():
        return None
    return {"messages": [{"role": "user", "content": record["prompt"]},
                         {"role": "assistant", "content": record["revision"]}]}


def pair_row(record: dict) -> dict | None:
    """{prompt, chosen: revision, rejected: original}; None when the revision changed nothing."""
    if record["status"] != "done" or not record["revision"].strip() or not record["original"].strip():
        return None
    if record["revision"].strip() == record["original"].strip():
        return None
    return {"prompt": record["prompt"], "chosen": record["revision"], "rejected": record["original"]}
