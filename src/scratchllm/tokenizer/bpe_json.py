r"""Our tokenizer file (`"type": "bpe"`): the text `Tokenizer.save` writes and the fields it reads back.

The file is meant to be read by people: `vocab[i]` is the byte string of token id i, in merge
order (ids are ranks), printable ASCII written as itself, a backslash as `\\` and any other
byte as `\xNN` -- so " the" reads as ` the` and "é" as `\xc3\xa9`.

    {"type": "bpe", "version": 1, "name": "...", "pattern": "<split regex>",
     "special_tokens": {"<|endoftext|>": 32760, ...},
     "vocab": ["\\x00", ..., "a", ..., " the", ...]}

This module knows the format only: plain dicts and strings in and out. Building the `Tokenizer`
(and its checks) is bpe.py's job; other libraries' formats are formats.py's.

>>> escape_bytes(" thé\\".encode())
' th\\xc3\\xa9\\\\'
>>> unescape_bytes(' th\\xc3\\xa9\\\\') == " thé\\".encode()
True
>>> import json
>>> text = dumps({b"a": 0, b"b": 1}, "\\S+", {"<|endoftext|>": 2}, "tiny")
>>> fields(json.loads(text))
{'ranks': {b'a': 0, b'b': 1}, 'pattern': '\\S+', 'special_tokens': {'<|endoftext|>': 2}, 'name': 'tiny'}
"""

from __future__ import annotations

import codecs
import json

FORMAT_VERSION = 1
_PRINTABLE = {b: chr(b) for b in range(0x20, 0x7F) if b != 0x5C}


def escape_bytes(b: bytes) -> str:
    """Bytes as readable ASCII: printable characters as themselves, others as \\xNN."""
    return "".join(_PRINTABLE.get(x) or ("\\\\" if x == 0x5C else f"\\x{x:02x}") for x in b)


def unescape_bytes(s: str) -> bytes:
    """Inverse of `escape_bytes`."""
    # our escapes are a subset of Python's bytes-literal escapes, so the codec decodes them
    return codecs.escape_decode(s.encode("ascii"))[0]


def dumps(ranks: dict[bytes, int], pattern: str, special_tokens: dict[str, int], name: str) -> str:
    """The file's text: a readable header, then one vocabulary entry a line."""
    n = max(ranks.values()) + 1
    vocab: list[str | None] = [None] * n  # null marks an unused id, if the ranks have gaps
    for b, i in ranks.items():
        vocab[i] = escape_bytes(b)
    head = {"type": "bpe", "version": FORMAT_VERSION, "name": name, "pattern": pattern,
            "special_tokens": special_tokens}
    body = ",\n".join(json.dumps(v) for v in vocab)
    return json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "vocab": [\n' + body + "\n ]\n}\n"


def fields(d: dict) -> dict:
    """The `Tokenizer(...)` arguments held by a parsed file (KeyError/TypeError/ValueError if malformed)."""
    ranks = {unescape_bytes(s): i for i, s in enumerate(d["vocab"]) if s is not None}
    return {"ranks": ranks, "pattern": d["pattern"], "special_tokens": d.get("special_tokens", {}),
            "name": d.get("name", "")}
