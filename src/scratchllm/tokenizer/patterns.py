"""Pre-tokenization regexes: text is cut into pieces first, and BPE merges only inside a piece.

The strings are the published ones of tiktoken's `gpt2` / `cl100k_base` / `o200k_base` encodings
(facts, copied verbatim), so splitting matches OpenAI's tokenizers exactly. They need the
`regex` module (Unicode classes `\\p{L}`, possessive quantifiers `++`), not `re`.

Why split at all: without it, BPE would learn tokens such as "dog." and "dog!" and "dog?" that
spend vocabulary on accidents of punctuation; the split keeps letters, numbers, punctuation and
whitespace apart, so merges stay within words and digits (cl100k/o200k: at most 3 digits a piece).

>>> import regex
>>> regex.findall(resolve_pattern("gpt4"), "Hello world123!!  ok")
['Hello', ' world', '123', '!!', ' ', ' ok']
>>> regex.findall(resolve_pattern("gpt2"), "Hello world123!!  ok")
['Hello', ' world', '123', '!!', ' ', ' ok']
"""

from __future__ import annotations

from scratchllm.errors import UserError

# subtle: `$` in these strings only ever follows a possessive `\s++`, which has already eaten a
# final newline, so Python's "end or before a final newline" meaning of `$` cannot differ from
# Rust's "end of text" here.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

# Names accepted wherever a pattern is asked for; anything else is taken as a custom regex.
PATTERNS = {
    "gpt2": GPT2_PATTERN,
    "gpt4": GPT4_PATTERN,
    "cl100k": GPT4_PATTERN,
    "cl100k_base": GPT4_PATTERN,
    "o200k": O200K_PATTERN,
    "o200k_base": O200K_PATTERN,
}

# The special tokens of OpenAI's published encodings (ids as tiktoken defines them).
KNOWN_SPECIAL_TOKENS = {
    "gpt2": {"<|endoftext|>": 50256},
    "cl100k": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
               "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    "o200k": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}


def resolve_pattern(pattern: str) -> str:
    """The regex for a pattern name ("gpt2", "gpt4"/"cl100k", "o200k") or a custom regex string."""
    import regex

    pat = PATTERNS.get(pattern, pattern)
    try:
        regex.compile(pat)
    except regex.error as e:
        raise UserError(f"split pattern {pattern!r} is not a valid regex ({e}); "
                        f"use one of {sorted(set(PATTERNS))} or fix the expression") from None
    return pat


def pattern_name(pat: str) -> str | None:
    """The short name of a built-in pattern string, or None for a custom one."""
    for name in ("gpt2", "gpt4", "o200k"):
        if PATTERNS[name] == pat:
            return name
    return None
