"""Shared bits of the RL tests: a tiny verifiable task and a tiny run that has seen its format.
(A uniquely named module, not conftest.)

The task: the prompt is one digit d, the right reply is the digit after it, (d + 1) mod 10 — a
lookup a 2-layer model learns in seconds, so an RL test can watch the reward climb on a CPU."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from align_helpers import byte_tokenizer, tiny_config, write_jsonl

from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import save_run_weights


def next_digit_items() -> list[dict]:
    return [{"prompt": str(d), "answer": str((d + 1) % 10)} for d in range(10)]


def format_run(path, correct: float = 0.1, steps: int = 60, seed: int = 0, lr: float = 3e-3) -> Path:
    """A tiny plain-text run trained on "d" → "c<|endoftext|>" where c is right with probability
    `correct`, else a random digit: it knows the format (one digit, then stop) and little more,
    so RL starts with a reward near 0.1–0.2 and has the rest to learn."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = byte_tokenizer()
    model = Transformer(tiny_config(block_size=16)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        rows = []
        for _ in range(32):
            d = rng.randrange(10)
            c = (d + 1) % 10 if rng.random() < correct else rng.randrange(10)
            rows.append(tok.encode(f"{d}{c}") + [tok.eot_id])
        ids = torch.tensor(rows)
        targets = ids[:, 1:].clone()                # learn the reply and its end, not the prompt
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_run_weights(path, model.eval(), tok)
    return Path(path)


def write_next_digit_data(path) -> Path:
    return write_jsonl(path, next_digit_items())
