"""Special tokens and the chat template: conversations to token ids and a loss mask.

A trained tokenizer reserves `DEFAULT_SPECIAL_TOKENS` in this order, on the last ids:
with vocab_size V and 8 specials, `<|endoftext|>` is V-8, `<|bos|>` V-7, ..., `<|assistant_end|>` V-1.
They are never produced from ordinary text: the training text never contains them (they are cut
out before counting) and `encode` only emits them when asked (`allowed_special`).

A conversation renders as

    <|bos|><|system_start|>...<|system_end|><|user_start|>...<|user_end|><|assistant_start|>...<|assistant_end|>...

and the loss mask is 1 exactly on the tokens the model must learn to produce: the assistant's
reply and its `<|assistant_end|>` (so it learns when to stop), 0 on everything else.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> specials = {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)}
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4", specials)
>>> ids, mask = render_conversation(tok, [{"role": "user", "content": "hi"},
...                                       {"role": "assistant", "content": "yo"}])
>>> tok.decode(ids)
'<|bos|><|user_start|>hi<|user_end|><|assistant_start|>yo<|assistant_end|>'
>>> mask
[0, 0, 0, 0, 0, 0, 1, 1, 1]
"""

from __future__ import annotations

from scratchllm.errors import UserError

ENDOFTEXT = "<|endoftext|>"
BOS = "<|bos|>"
ROLES = ("system", "user", "assistant")

DEFAULT_SPECIAL_TOKENS = [
    ENDOFTEXT,           # separates documents in pretraining shards
    BOS,                 # opens a conversation
    "<|system_start|>", "<|system_end|>",
    "<|user_start|>", "<|user_end|>",
    "<|assistant_start|>", "<|assistant_end|>",
]
CHAT_TOKENS = DEFAULT_SPECIAL_TOKENS[1:]


def chat_token_ids(tokenizer) -> dict[str, int]:
    """Ids of the chat tokens; a UserError names the first one the tokenizer lacks."""
    specials = tokenizer.special_tokens
    for t in CHAT_TOKENS:
        if t not in specials:
            raise UserError(f"tokenizer has no chat token {t}; train it with the default special tokens "
                            "(scratchllm tokenizer train) to use chat data")
    return {t: specials[t] for t in CHAT_TOKENS}


def render_conversation(tokenizer, messages: list[dict], for_completion: bool = False) -> tuple[list[int], list[int]]:
    """(ids, loss_mask) of a conversation `[{"role": ..., "content": ...}, ...]`.

    Message text is encoded as plain text: a special-token string typed by a user cannot
    inject a real special token. `for_completion=True` appends `<|assistant_start|>` (mask 0):
    the prompt from which a model writes the next reply.
    """
    sp = chat_token_ids(tokenizer)
    ids, mask = [sp[BOS]], [0]
    for n, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise UserError(f"message {n} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise UserError(f"message {n} has no text 'content'; give each message a string content")
        body = tokenizer.encode(content, disallowed_special=())
        learn = 1 if role == "assistant" else 0
        ids.append(sp[f"<|{role}_start|>"])
        mask.append(0)
        ids.extend(body)
        mask.extend([learn] * len(body))
        ids.append(sp[f"<|{role}_end|>"])
        mask.append(learn)
    if for_completion:
        ids.append(sp["<|assistant_start|>"])
        mask.append(0)
    return ids, mask
