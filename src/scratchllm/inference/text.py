"""From generated token ids to text, one token at a time, with stop strings.

A token can end in the middle of a UTF-8 character, so bytes go through an incremental
decoder that holds back an unfinished character. Text that might be the start of a stop
string is held back too, until it either completes the stop string (then generation ends and
the stop string is not shown) or cannot anymore. The engine knows token ids only; this is the
layer above it that knows text, one `TextDecoder` per generated sequence.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
>>> dec = TextDecoder(tok, stops=["\\n\\n"])
>>> [dec.feed(i) for i in b"Hi\\n"], dec.stopped
(['H', 'i', ''], False)
>>> dec.feed(ord("\\n")), dec.stopped                # the stop string completes: nothing shown
('', True)
"""

from __future__ import annotations

import codecs
from typing import Iterable

from scratchllm.errors import UserError


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Ids of `prompt`; special-token text like <|endoftext|> becomes its id; empty → [eot]."""
    if not prompt:
        if tokenizer.eot_id is None:
            raise UserError("the prompt is empty and the tokenizer has no end-of-text token to start from; give a prompt")
        return [tokenizer.eot_id]
    if tokenizer.special_tokens:
        return tokenizer.encode(prompt, allowed_special="all")
    return tokenizer.encode(prompt)


def held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that could be the start of a stop string."""
    longest = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:n]):
                longest = n
                break
    return longest


class TextDecoder:
    """Turns one sequence's tokens into text pieces that are certain; `stopped` once a stop string appears."""

    def __init__(self, tokenizer, stops: Iterable[str] = ()):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.stopped = False

    def feed(self, token: int) -> str:
        """The text that `token` makes certain (possibly ''); sets `stopped` on a stop string."""
        self.pending += self.decoder.decode(self.tokenizer.decode_bytes([token]))
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            ready, self.pending = self.pending[:min(hits)], ""
            return ready
        n_ready = len(self.pending) - held_back(self.pending, self.stops)
        ready, self.pending = self.pending[:n_ready], self.pending[n_ready:]
        return ready

    def finish(self) -> str:
        """What is left once the sequence ends without a stop string (held-back text, a partial character)."""
        if self.stopped:
            return ""
        rest, self.pending = self.pending + self.decoder.decode(b"", final=True), ""
        return rest
