"""Character vocabulary: one token per distinct character, plus an optional boundary token.

A character-level model's tokenizer is a sorted list of the characters in its training text.
For one-item-per-line data (names, words) a boundary token at id 0 marks where an item starts
and ends, as makemore's '.' does: a model learns both which letter opens a name and when to stop.
The interface matches the BPE `Tokenizer` (`encode`, `decode`, `vocab_size`, `eot_id`, `save`,
`load`), so the main model, trainer and sampler take either.

>>> tok = CharTokenizer.from_text("emma\\nava", boundary=".")
>>> tok.vocab_size, tok.eot_id, tok.decode([0] + tok.encode("ava") + [0])
(5, 0, '.ava.')
>>> tok.encode("mave")
[3, 1, 4, 2]
"""

from __future__ import annotations

import json
from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.files import read_json


class CharTokenizer:
    """Maps characters to ids and back; id 0 is the boundary token when there is one."""

    def __init__(self, chars: list[str], boundary: str | None = None) -> None:
        if boundary is not None and boundary in chars:
            raise ValueError(f"boundary token {boundary!r} is also a character of the text")
        self.chars = sorted(set(chars))
        self.boundary = boundary
        self.itos = ([boundary] if boundary is not None else []) + self.chars
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str, boundary: str | None = None) -> "CharTokenizer":
        """The vocabulary of `text`: its distinct characters, sorted (minus the line break if it is the boundary)."""
        chars = set(text)
        if boundary is not None:
            chars.discard(boundary)
            # subtle: in line mode the newline only separates items; it is the boundary's job.
            chars.discard("\n")
        return cls(sorted(chars), boundary)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def eot_id(self) -> int | None:
        """The boundary token's id (0), or None for a plain character stream."""
        return 0 if self.boundary is not None else None

    @property
    def special_tokens(self) -> dict[str, int]:
        return {}

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of `text`; an unknown character is a UserError naming it."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise UserError(f"character {e.args[0]!r} is not in this model's vocabulary; "
                            "use only characters seen in training") from None

    encode_ordinary = encode

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[int(i)] for i in ids)

    def decode_bytes(self, ids: list[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def to_dict(self) -> dict:
        return {"type": "char", "chars": self.chars, "boundary": self.boundary}

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (`"type": "char"`), atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        data = read_json(path, "tokenizer file", "check the run directory", "re-create the run")
        try:
            if data.get("type") != "char":
                raise ValueError("not a char tokenizer")
            return cls(list(data["chars"]), data.get("boundary"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"'{path}' is not a character tokenizer file; re-create the run") from None

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, boundary={self.boundary!r})"
