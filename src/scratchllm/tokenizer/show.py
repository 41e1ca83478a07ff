"""Token boundaries made visible: coloured backgrounds in the terminal, or an HTML page.

>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)} | {b"hi": 256}, "gpt2")
>>> html_view(tok, tok.encode("hi!")).count("<span")
2
"""

from __future__ import annotations

import html

_ANSI = [41, 42, 43, 44, 45, 46]  # background colours, cycled token by token
_CSS = ["#fbb", "#bfb", "#ffb", "#bbf", "#fbf", "#bff"]


def _pieces(tok, ids: list[int]) -> list[tuple[int, str]]:
    # subtle: a token may hold half a UTF-8 character; such bytes show as U+FFFD
    return [(i, tok.decode([i])) for i in ids]


def terminal_view(tok, ids: list[int]) -> str:
    """The text of `ids` with each token on an alternating ANSI background colour."""
    out = []
    for n, (_, s) in enumerate(_pieces(tok, ids)):
        out.append(f"\x1b[30;{_ANSI[n % len(_ANSI)]}m{s}\x1b[0m")
    return "".join(out)


def html_view(tok, ids: list[int]) -> str:
    """A standalone HTML page: one coloured span a token, its id in the tooltip."""
    spans = "".join(
        f'<span title="{i}" style="background:{_CSS[n % len(_CSS)]}">{html.escape(s)}</span>'
        for n, (i, s) in enumerate(_pieces(tok, ids)))
    return ("<!doctype html><meta charset='utf-8'><title>tokens</title>"
            f"<p>{len(ids)} tokens</p><pre style='white-space:pre-wrap;font-size:15px'>{spans}</pre>\n")
