"""Preference data: files of (prompt, chosen reply, rejected reply) -> token rows for DPO and reward models.

Four layouts are read from .json (an array) or .jsonl (one record a line, .gz/.xz too):

    pairs         {"prompt": text or [messages], "chosen": text, "rejected": text}
    hh            {"chosen": transcript, "rejected": transcript}   (Anthropic HH-RLHF:
                  "\\n\\nHuman: ...\\n\\nAssistant: ..."; the shared start is the prompt)
    llamafactory  {"conversations": [{"from", "value"}], "chosen": {"from", "value"}, "rejected": {...}}
    openai        {"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content"}],
                  "non_preferred_output": [...]}   (OpenAI's DPO fine-tuning files; the Orca pairs)

Every record becomes a `Pair`: the prompt as chat messages (ending on a user turn) and two
reply texts. A pair whose replies are equal teaches nothing (its DPO gradient is zero and a
reward model cannot rank it), so it is refused (or skipped, when asked), as is a record missing a field.

`encode_pairs` renders each side with the chat template (`tokenizer/special.py`), and masks
everything but the final reply (and its `<|assistant_end|>`): earlier assistant turns of a
multi-turn prompt are context here, not something to prefer. Rows are right-padded, so under
the causal mask a real token never sees padding: its log-prob is the same padded or not.

>>> records = [{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello!", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: go away"}]
>>> pair = to_pair(records[0], "hh")
>>> pair.prompt, pair.chosen, pair.rejected
([{'role': 'user', 'content': 'hi'}], 'hello!', 'go away')
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4",
...                 {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})
>>> examples, stats = encode_pairs(tok, [pair], block_size=32)
>>> batch = collate_pairs(examples)
>>> batch["inputs"].shape, (batch["targets"] != -100).sum(dim=1).tolist()   # chosen row, rejected row
(torch.Size([2, 13]), [7, 8])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from scratchllm.data.loader import ShuffledEpochs
from scratchllm.data.chat import SHAREGPT_ROLES, read_records, split_heldout
from scratchllm.errors import UserError
from scratchllm.tokenizer.special import render_conversation

FORMATS = ("pairs", "hh", "llamafactory", "openai")
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ASSISTANT = "\n\nAssistant:"


@dataclass
class Pair:
    prompt: list[dict]     # chat messages; the replies answer the last one
    chosen: str
    rejected: str


def detect_format(record: dict) -> str:
    """The layout of one record, from its keys."""
    if "preferred_output" in record:
        return "openai"
    if "conversations" in record:
        return "llamafactory"
    if "prompt" in record:
        return "pairs"
    if "chosen" in record and "rejected" in record:
        return "hh"
    raise UserError(f"cannot tell the preference format of a record with keys {sorted(record)}; give "
                    f"{{prompt, chosen, rejected}} records or pass --format (one of {', '.join(FORMATS)})")


def hh_messages(transcript: str) -> list[dict]:
    """An HH-RLHF transcript as messages: "\\n\\nHuman: a\\n\\nAssistant: b" -> user a, assistant b."""
    parts = _HH_TURN.split(transcript)   # [preamble, role, text, role, text, ...]
    return [{"role": "user" if role == "Human" else "assistant", "content": text.strip()}
            for role, text in zip(parts[1::2], parts[2::2])]


def _hh_pair(record: dict) -> Pair:
    chosen, rejected = record["chosen"], record["rejected"]
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise ValueError("HH transcripts must be text")
    # The prompt is the shared start up to its last "Assistant:" marker; the replies are the rest.
    # subtle: not "every turn but the last": some replies run on into further "Human:" turns.
    common = 0
    while common < min(len(chosen), len(rejected)) and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(_HH_ASSISTANT, 0, common)
    if cut < 0:
        raise ValueError('the two transcripts share no turns ending in "\\n\\nAssistant:"')
    prompt = hh_messages(chosen[:cut])
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError("the shared prompt does not end with a Human turn")
    cut += len(_HH_ASSISTANT)
    return Pair(prompt, chosen[cut:].strip(), rejected[cut:].strip())


def _text(value) -> str:
    """A reply given as text, one message dict, or a one-message list."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("content", value.get("value"))
    if not isinstance(value, str):
        raise ValueError("a reply is not text (or a single message holding text)")
    return value


def _sharegpt(turns: list[dict]) -> list[dict]:
    return [{"role": SHAREGPT_ROLES.get(t.get("from"), t.get("from")), "content": t.get("value")} for t in turns]


def to_pair(record: dict, fmt: str) -> Pair:
    """One record as a Pair (KeyError / ValueError for a malformed one: `load_pairs` names it)."""
    if fmt == "hh":
        return _hh_pair(record)
    if fmt == "pairs":
        prompt = record["prompt"]
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return Pair(messages, _text(record["chosen"]), _text(record["rejected"]))
    if fmt == "llamafactory":
        return Pair(_sharegpt(record["conversations"]), _text(record["chosen"]), _text(record["rejected"]))
    if fmt == "openai":
        return Pair(list(record["input"]["messages"]), _text(record["preferred_output"]),
                    _text(record["non_preferred_output"]))
    raise UserError(f"unknown preference format {fmt!r}; use one of {', '.join(FORMATS)} (or auto)")


def load_pairs(path, fmt: str = "auto", drop_identical: bool = False) -> list[Pair]:
    """Every pair of a file; a record with a missing field is one UserError, and so is a pair with
    equal replies unless `drop_identical` (real HH-RLHF files hold a few dozen: they are skipped)."""
    records = read_records(path)
    fmt = detect_format(records[0]) if fmt == "auto" else fmt
    pairs = []
    for n, record in enumerate(records):
        try:
            pair = to_pair(record, fmt)
        except KeyError as e:
            raise UserError(f"record {n} of '{path}' has no {e} field; every {fmt} record needs it "
                            f"(or check --format, read as {fmt})") from None
        except (ValueError, TypeError, AttributeError) as e:
            raise UserError(f"record {n} of '{path}' is malformed ({e}); fix or remove it") from None
        if pair.chosen.strip() == pair.rejected.strip():
            if drop_identical:
                continue
            raise UserError(f"record {n} of '{path}' has identical chosen and rejected replies, which teach "
                            "nothing; remove it, or skip all such pairs with dpo.drop_identical=true")
        pairs.append(pair)
    return pairs


def encoded_splits(cfg, tokenizer, block_size: int, quiet: bool = False) -> tuple[list, list]:
    """(train, held-out) encoded pairs for a stage config with `data`, `val_data`, `format`,
    `drop_identical`, `val_fraction`, `split_seed` (DPO's, the reward model's); prints their counts."""
    pairs = load_pairs(cfg.data, cfg.format, cfg.drop_identical)
    if cfg.val_data:
        train, held = pairs, load_pairs(cfg.val_data, cfg.format, cfg.drop_identical)
    else:
        train, held = split_heldout(pairs, cfg.val_fraction, cfg.split_seed, what="pairs",
                                    fix="another val_fraction, or pass held-out pairs of your own")
    train_ex, train_stats = encode_pairs(tokenizer, train, block_size)
    held_ex, held_stats = encode_pairs(tokenizer, held, block_size)
    if not quiet:
        print(f"train: {train_stats.summary()}\nheld out: {held_stats.summary()}", flush=True)
    return train_ex, held_ex


@dataclass
class PairExample:
    """Both sides shifted for next-token prediction; targets are -100 except on the final reply."""
    chosen_inputs: list[int]
    chosen_targets: list[int]
    rejected_inputs: list[int]
    rejected_targets: list[int]


@dataclass
class PairStats:
    pairs: int = 0
    truncated: int = 0     # a reply cut at block_size

    def summary(self) -> str:
        return f"{self.pairs:,} pairs, {self.truncated:,} replies truncated at block_size"


def _side(tokenizer, prompt: list[dict], reply: str, prompt_len: int, block_size: int) -> tuple[list, list, bool]:
    ids, _ = render_conversation(tokenizer, prompt + [{"role": "assistant", "content": reply}])
    inputs = ids[:-1]
    # Target t predicts ids[t+1]: the reply's tokens are ids[prompt_len:], so targets from prompt_len-1.
    targets = [-100] * (prompt_len - 1) + ids[prompt_len:]
    cut = len(inputs) > block_size
    return inputs[:block_size], targets[:block_size], cut


def encode_pairs(tokenizer, pairs: list[Pair], block_size: int) -> tuple[list[PairExample], PairStats]:
    """Render both sides of each pair; a prompt that leaves no room for a reply is a UserError."""
    stats = PairStats()
    examples = []
    for n, pair in enumerate(pairs):
        prompt_len = len(render_conversation(tokenizer, pair.prompt, for_completion=True)[0])
        if prompt_len >= block_size:
            raise UserError(f"the prompt of pair {n} has {prompt_len} tokens but the model's context is "
                            f"model.block_size={block_size}; shorten or drop that prompt, or use a model with "
                            "a larger context")
        c_in, c_tg, c_cut = _side(tokenizer, pair.prompt, pair.chosen, prompt_len, block_size)
        r_in, r_tg, r_cut = _side(tokenizer, pair.prompt, pair.rejected, prompt_len, block_size)
        stats.pairs += 1
        stats.truncated += c_cut + r_cut
        examples.append(PairExample(c_in, c_tg, r_in, r_tg))
    return examples, stats


def _pad(rows: list[list[int]], value: int, length: int) -> torch.Tensor:
    return torch.tensor([r + [value] * (length - len(r)) for r in rows])


def collate_pairs(examples: list[PairExample]) -> dict[str, torch.Tensor]:
    """A batch of B pairs: "inputs"/"targets" [2B, T], rows 0..B-1 chosen, B..2B-1 rejected (right-padded)."""
    inputs = [e.chosen_inputs for e in examples] + [e.rejected_inputs for e in examples]
    targets = [e.chosen_targets for e in examples] + [e.rejected_targets for e in examples]
    length = max(len(r) for r in inputs)
    return {"inputs": _pad(inputs, 0, length), "targets": _pad(targets, -100, length)}


def pair_batch(examples: list[PairExample], picked: list[int], refs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """`collate_pairs` of the picked pairs, plus "ref" [2B] from `refs` [N, 2] (DPO's reference log-probs)."""
    batch = collate_pairs([examples[i] for i in picked])
    if refs is not None:
        batch["ref"] = torch.cat([refs[picked, 0], refs[picked, 1]])
    return batch


def fixed_pair_batches(examples: list[PairExample], batch_size: int, refs: torch.Tensor | None = None) -> list[dict]:
    """Held-out pairs in order, as the loop's fixed validation batches."""
    return [pair_batch(examples, list(range(i, min(i + batch_size, len(examples)))), refs)
            for i in range(0, len(examples), batch_size)]


@dataclass
class PairBatches(ShuffledEpochs):
    """Endless shuffled pair batches (with "ref" when `refs` is given); `state_dict()` makes a resume exact."""
    examples: list[PairExample]
    batch_size: int
    seed: int = 0
    refs: torch.Tensor | None = None
    epoch: int = 0
    index: int = 0

    def __post_init__(self):
        if not self.examples:
            raise UserError("no training pairs after encoding the preference data; check the data and block_size")
        self._start(len(self.examples))

    def __next__(self) -> dict[str, torch.Tensor]:
        return pair_batch(self.examples, self._next_indices(), self.refs)
