"""Multi-turn chat with a fine-tuned model: the history rendered with the chat template each turn.

Each turn renders the whole conversation (optional system message, every user and assistant
turn so far, the new user message) with `tokenizer.special.render_conversation(...,
for_completion=True)`, which ends on `<|assistant_start|>`, and samples with the engine's
`generate` until `<|assistant_end|>` (or end-of-text, or the token budget). The reply joins the
history. When the history no longer fits the context with room for a reply, the oldest
exchanges are dropped (the system message stays): the model only ever sees what fits.

`reply_batch` answers many conversations at once (one `generate_batch` call): the next
assistant turn of each, for callers that need replies in bulk (building preference pairs,
constitutional AI's replies, critiques and revisions).

It knows conversations and token ids; the terminal loop is `scratchllm chat` (inference/cli.py).

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4",
...                 {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=264, block_size=64)).eval()
>>> chat = ChatSession(model, tok, system="Be brief.", max_new_tokens=5, temperature=0)
>>> reply = "".join(chat.send("hi"))
>>> [m["role"] for m in chat.messages]
['system', 'user', 'assistant']
>>> replies = reply_batch(model, tok, [[{"role": "user", "content": "hi"}]] * 2, max_new_tokens=4, seeds=[1, 1])
>>> replies[0] == replies[1]    # a row's reply depends on its own seed only
True
"""

from __future__ import annotations

import codecs
from typing import Iterator

from scratchllm.inference.engine import Request, SamplingParams, generate, generate_batch
from scratchllm.tokenizer.special import ENDOFTEXT, chat_token_ids, render_conversation

ASSISTANT_END = "<|assistant_end|>"


def stop_ids(tokenizer) -> tuple[int, ...]:
    """The ids that end an assistant turn: `<|assistant_end|>`, and end-of-text when the tokenizer has it."""
    specials = tokenizer.special_tokens
    return (chat_token_ids(tokenizer)[ASSISTANT_END],) + ((specials[ENDOFTEXT],) if ENDOFTEXT in specials else ())


def reply_batch(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 200,
                temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                seeds: list[int | None] | None = None) -> list[str]:
    """The next assistant reply to each conversation (messages ending on a user turn), in one batch.

    `seeds[i]` seeds row i's sampling (None: unseeded); a row's reply never depends on the others.
    A conversation longer than the context is the engine's one-sentence error.
    """
    seeds = seeds if seeds is not None else [None] * len(conversations)
    ends = stop_ids(tokenizer)
    requests = [Request(render_conversation(tokenizer, messages, for_completion=True)[0], max_new_tokens,
                        SamplingParams(temperature, top_k, top_p, seed).check(), ends)
                for messages, seed in zip(conversations, seeds)]
    seqs = generate_batch(model, requests, vocab_size=tokenizer.vocab_size)
    return [tokenizer.decode(s.generated) for s in seqs]


class ChatSession:
    """A conversation with a model: `send(text)` streams the reply and remembers both turns."""

    def __init__(self, model, tokenizer, system: str | None = None, max_new_tokens: int = 200,
                 temperature: float = 0.8, top_k: int | None = 200, top_p: float | None = None,
                 seed: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.system = [{"role": "system", "content": system}] if system else []
        self.turns: list[dict] = []
        self.sampling = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             seed=seed)
        self.stop_ids = list(stop_ids(tokenizer))

    @property
    def messages(self) -> list[dict]:
        return self.system + self.turns

    def prompt_ids(self, user_text: str) -> list[int]:
        """The rendered history plus the new message, oldest exchanges dropped until a reply fits."""
        block = self.model.config.block_size
        room = min(self.sampling["max_new_tokens"], block // 2)
        turns = self.turns + [{"role": "user", "content": user_text}]
        while True:
            ids, _ = render_conversation(self.tokenizer, self.system + turns, for_completion=True)
            if len(ids) + room <= block or len(turns) == 1:
                return ids   # a single message too long for the context is the engine's one-sentence error
            turns = turns[2:]

    def send(self, user_text: str) -> Iterator[str]:
        """Yield the reply as text pieces; when it is done, both turns join the history."""
        ids = self.prompt_ids(user_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        reply = ""
        for token in generate(self.model, ids, stop_ids=self.stop_ids, vocab_size=self.tokenizer.vocab_size,
                              **self.sampling):
            piece = decoder.decode(self.tokenizer.decode_bytes([token]))
            reply += piece
            if piece:
                yield piece
        tail = decoder.decode(b"", final=True)
        if tail:
            reply += tail
            yield tail
        self.turns += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]

    def reset(self) -> None:
        self.turns = []
