"""Chat on the server: messages to a prompt with the chat template, the reply's stop ids, chat log-probs.

The template is `tokenizer/special.py`'s (the one fine-tuning trained on), ending on
`<|assistant_start|>`; a reply ends at `<|assistant_end|>` or end-of-text. A base run was never
taught the template, so chat on it is refused with a sentence saying what to serve instead.
It knows conversations and the served model, not HTTP.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
>>> from types import SimpleNamespace
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(DEFAULT_SPECIAL_TOKENS)})
>>> served = SimpleNamespace(tokenizer=tok, chat=True, context=64, check_prompt=lambda ids: None)
>>> tok.decode(chat_prompt(served, [{"role": "user", "content": "hi"}]))
'<|bos|><|user_start|>hi<|user_end|><|assistant_start|>'
>>> chat_stop_ids(served)
(263, 256)
"""

from __future__ import annotations

from scratchllm.errors import UserError
from scratchllm.tokenizer.special import ENDOFTEXT, chat_token_ids, render_conversation

ASSISTANT_END = "<|assistant_end|>"


def chat_prompt(served, messages: list[dict]) -> list[int]:
    """Ids of the conversation ready for the assistant's reply; UserError for a base run or a long history."""
    if not served.chat:
        raise UserError("this run is a base model, not fine-tuned for chat, so it has no chat template to follow; "
                        "serve a fine-tuned run (scratchllm finetune) or use /v1/completions to continue text")
    ids, _ = render_conversation(served.tokenizer, messages, for_completion=True)
    served.check_prompt(ids)
    return ids


def chat_stop_ids(served) -> tuple[int, ...]:
    specials = served.tokenizer.special_tokens
    return (chat_token_ids(served.tokenizer)[ASSISTANT_END],) + ((specials[ENDOFTEXT],) if ENDOFTEXT in specials else ())


def _entry(tok, token: int, logprob: float | None) -> dict:
    raw = tok.decode_bytes([token])
    return {"token": raw.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(raw)}


def logprob_content(tok, scored: list[tuple]) -> list[dict]:
    """OpenAI's chat `logprobs.content` entries for (token, log-prob, [(id, log-prob)] best) triples."""
    content = []
    for token, logprob, best in scored:
        entry = _entry(tok, token, logprob)
        entry["top_logprobs"] = [_entry(tok, i, v) for i, v in best]
        content.append(entry)
    return content


def chat_logprobs(served, prompt: list[int], tokens: list[int], top: int) -> dict:
    """OpenAI's chat `logprobs`: {"content": [{token, logprob, bytes, top_logprobs}, ...]} over the reply."""
    full = (prompt + tokens)[: served.context]
    values, best = served.token_logprobs(full, top)
    scored = [(full[pos], values[pos], best[pos] if top else []) for pos in range(len(prompt), len(full))]
    return {"content": logprob_content(served.tokenizer, scored)}
