"""Rollouts for on-policy RL: prompts in, sampled replies out, as the tensors PPO and GRPO train on.

- `read_items(path)`: the data lines, {"prompt": text or messages} or GSM8K's {"question",
  "answer"} (any other fields ride along for the reward, e.g. "test" for code).
- `PromptCodec`: a line's prompt as token ids — the chat template when the run has one
  (`<|assistant_start|>` last; the reply stops at `<|assistant_end|>`), else plain text (stops at
  `<|endoftext|>`) — and the check that prompt + reply budget fit the context.
- `sample`: the replies, through the one engine (`inference/engine.py generate_batch`), each row
  with its own seed; a reply that stopped keeps its stop token, so the policy learns to stop.
- `pack`: prompt + reply rows right-padded into `ids` [N, L] and `mask` [N, L−1], 1 where the
  next-token target is a reply token (positions align with `model(ids[:, :-1])`).
- `RolloutBatches`: what the one loop (`train/loop.py`) iterates: a subclass makes a rollout
  (`make_rollout`), this class cuts it into minibatches for several epochs, then makes the next;
  `state_dict` carries the unfinished rollout itself, so `--resume` continues exactly.

>>> ids, mask = pack([[5, 6], [7]], [[1, 2], [3, 4, 9]])
>>> ids.tolist(), mask.int().tolist()
([[5, 6, 1, 2], [7, 3, 4, 9]], [[0, 1, 1], [1, 1, 1]])
"""

from __future__ import annotations

import base64
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scratchllm.data.chat import read_records
from scratchllm.errors import UserError
from scratchllm.inference.engine import Request, SamplingParams, generate_batch
from scratchllm.tokenizer.special import render_conversation
from scratchllm.train.step import autocast


def read_items(path: str | Path, needs: list[str] = ()) -> list[dict]:
    """The lines of an RL data file; each needs a "prompt" (text or messages) or a "question", and `needs`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompts file '{path}' does not exist; pass a .jsonl file of {{\"prompt\": ...}} "
                        "or {\"question\", \"answer\"} lines")
    items = read_records(path)
    for n, item in enumerate(items, start=1):
        prompt = item.get("prompt", item.get("question"))
        if not isinstance(prompt, (str, list)) or not prompt:
            raise UserError(f"{path} item {n} has no \"prompt\" (or \"question\"); give every line one")
        for name in needs:
            if name not in item:
                raise UserError(f"{path} item {n} has no \"{name}\", which the reward reads; add it or pick "
                                "another --reward")
    return items


@dataclass
class PromptCodec:
    """How a data line's prompt becomes ids, and which token ends a reply."""

    tokenizer: object
    chat: bool
    block_size: int
    max_new_tokens: int

    @property
    def stop_id(self) -> int | None:
        if self.chat:
            return self.tokenizer.special_tokens["<|assistant_end|>"]
        return self.tokenizer.eot_id

    def encode(self, item: dict, where: str = "") -> list[int]:
        prompt = item.get("prompt", item.get("question"))
        if self.chat:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            ids, _ = render_conversation(self.tokenizer, messages, for_completion=True)
        else:
            text = prompt if isinstance(prompt, str) else "\n".join(m.get("content", "") for m in prompt)
            ids = self.tokenizer.encode(text, disallowed_special=())
        if len(ids) + self.max_new_tokens > self.block_size:
            raise UserError(f"the prompt of {where or 'an item'} has {len(ids)} tokens, which with max_new_tokens="
                            f"{self.max_new_tokens} exceeds the model's context of {self.block_size}; shorten it "
                            "or lower max_new_tokens")
        return ids


def sample(model: torch.nn.Module, prompts: list[list[int]], max_new_tokens: int, stop_id: int | None,
           temperature: float, seed: int, vocab_size: int | None) -> tuple[list[list[int]], float]:
    """(reply ids per prompt, with the stop token where one was sampled; generated tokens per second)."""
    requests = [Request(p, max_new_tokens, SamplingParams(temperature, seed=seed + i),
                        (stop_id,) if stop_id is not None else ()) for i, p in enumerate(prompts)]
    start = time.perf_counter()
    seqs = generate_batch(model, requests, vocab_size=vocab_size)
    seconds = time.perf_counter() - start
    replies = [s.generated + ([stop_id] if s.finish_reason == "stop" else []) for s in seqs]
    return replies, sum(len(s.generated) for s in seqs) / max(seconds, 1e-9)


def pack(prompts: list[list[int]], replies: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [N, L] right-padded with 0, mask [N, L−1]: 1 where the target ids[:, 1:] is a reply token)."""
    width = max(len(p) + len(r) for p, r in zip(prompts, replies))
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width - 1, dtype=torch.bool)
    for row, (p, r) in enumerate(zip(prompts, replies)):
        ids[row, :len(p) + len(r)] = torch.tensor(p + r)
        mask[row, len(p) - 1:len(p) + len(r) - 1] = True
    return ids, mask


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """The model in eval mode (no dropout) inside the block, as it was after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def forward_rows(fn, ids: torch.Tensor, batch_size: int, device: torch.device, dtype: str) -> list:
    """fn(ids chunk on the device) over row chunks, under the loop's autocast, results on the CPU."""
    out = []
    for start in range(0, ids.shape[0], batch_size):
        with autocast(device, dtype):
            result = fn(ids[start:start + batch_size].to(device))
        out.append(tuple(r.float().cpu() for r in result) if isinstance(result, tuple) else result.float().cpu())
    return out


def _tensor_to_json(t: torch.Tensor) -> dict:
    arr = t.contiguous().numpy()
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _json_to_tensor(d: dict) -> torch.Tensor:
    arr = np.frombuffer(base64.b64decode(d["b64"]), dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    return torch.from_numpy(arr.copy())


class RolloutBatches:
    """Minibatches of rollouts for the loop: `epochs` passes over each rollout in shuffled minibatches
    of `batch_size` rows, then a fresh rollout from the policy as it is now.

    A subclass implements `make_rollout(index) -> (tensors: dict of [N, ...] CPU tensors, stats: dict
    of floats)`; every minibatch is a dict of row slices plus "stats" (the rollout's, logged by the
    loss as metrics). The shuffle of rollout k's epoch e is seeded by (seed, k, e): no state needed.
    """

    def __init__(self, batch_size: int, epochs: int, seed: int):
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.rollouts = 0          # rollouts made so far; the current one is number rollouts - 1
        self.tensors: dict[str, torch.Tensor] | None = None
        self.stats: dict[str, float] = {}
        self.order: list[torch.Tensor] = []
        self.pos = 0

    def make_rollout(self, index: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        raise NotImplementedError

    def _plan(self) -> None:
        """The minibatch row indices of the current rollout, every epoch."""
        n = next(iter(self.tensors.values())).shape[0]
        self.order = []
        for epoch in range(self.epochs):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + (self.rollouts - 1) * 1009 + epoch)
            perm = torch.randperm(n, generator=g)
            self.order += [perm[i:i + self.batch_size] for i in range(0, n, self.batch_size)]

    def __iter__(self) -> "RolloutBatches":
        return self

    def __next__(self) -> dict:
        if self.tensors is None or self.pos >= len(self.order):
            self.rollouts += 1
            self.tensors, self.stats = self.make_rollout(self.rollouts - 1)
            self._plan()
            self.pos = 0
        rows = self.order[self.pos]
        self.pos += 1
        return {**{k: v[rows] for k, v in self.tensors.items()}, "stats": dict(self.stats)}

    def state_dict(self) -> dict:
        """Position and, mid-rollout, the rollout itself (exact bytes): resuming must not resample it,
        since the policy that sampled it no longer exists."""
        state = {"rollouts": self.rollouts, "pos": self.pos, "stats": self.stats, "extra": self.extra_state()}
        if self.tensors is not None and self.pos < len(self.order):
            state["tensors"] = {k: _tensor_to_json(v) for k, v in self.tensors.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.rollouts, self.pos, self.stats = state["rollouts"], state["pos"], dict(state["stats"])
        self.load_extra_state(state.get("extra", {}))
        if "tensors" in state:
            self.tensors = {k: _json_to_tensor(v) for k, v in state["tensors"].items()}
            self._plan()
        else:
            self.tensors, self.order = None, []

    def extra_state(self) -> dict:
        """What a subclass must carry across a resume besides the rollout (PPO's adaptive β)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


def pick_prompts(n_items: int, index: int, per_rollout: int, seed: int) -> list[int]:
    """Item indices of rollout `index`: consecutive slices of a fresh shuffle of all items each epoch,
    a pure function of (index, seed), so a resumed run draws the same prompts."""
    perms: dict[int, torch.Tensor] = {}
    out = []
    for pos in range(index * per_rollout, (index + 1) * per_rollout):
        epoch, offset = divmod(pos, n_items)
        if epoch not in perms:
            perms[epoch] = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        out.append(int(perms[epoch][offset]))
    return out
