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

import functools

import regex

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
    pat = PATTERNS.get(pattern, pattern)
    try:
        regex.compile(pat)
    except regex.error as e:
        raise UserError(f"split pattern {pattern!r} is not a valid regex ({e}); "
                        f"use one of {sorted(set(PATTERNS))} or fix the expression") from None
    return pat


# tiktoken's Rust regex has Unicode 16.0 tables; the `regex` module here has Unicode 17.0. The code
# points below were assigned in 17.0 as letters, marks or digits, so `regex` puts them in \p{L},
# \p{M} or \p{N} while tiktoken sees unassigned characters. Found by comparing both on every
# code point; text holding one is split as tiktoken splits it (see `split_like_tiktoken`).
NEWER_THAN_TIKTOKEN = "[" + (
    r"\U00000558\U0000058b-\U0000058c\U000005c8-\U000005c9\U0000088f\U00000b53-\U00000b54"
    r"\U00000c5c\U00000cdc\U00001acf-\U00001af0\U0000208f\U0000209d-\U0000209f"
    r"\U0000a7ce-\U0000a7cf\U0000a7d2\U0000a7d4\U0000a7dd\U0000a7e2\U0000a7f1"
    r"\U0000ab6c-\U0000ab6d\U000107bb-\U000107bf\U00010940-\U00010959\U00010ec5-\U00010ec7"
    r"\U00010ecb-\U00010ecf\U00010ed9-\U00010eee\U00010ef0-\U00010efb\U00011b0a"
    r"\U00011b60-\U00011b67\U00011db0-\U00011ddb\U00011de0-\U00011de9\U00011df0-\U00011df1"
    r"\U0001246f\U00012475-\U0001247f\U00012550-\U00012686\U00016ea0-\U00016eb8"
    r"\U00016ebb-\U00016ed3\U00016ff2-\U00016ff6\U000187f8-\U000187ff\U00018cd6-\U00018cda"
    r"\U00018d09-\U00018d20\U00018d80-\U00018df2\U00018e00-\U00019191\U000191a0-\U000191d2"
    r"\U0001b123-\U0001b128\U0001b168\U0001d127-\U0001d128\U0001d250-\U0001d252"
    r"\U0001d25b-\U0001d25c\U0001d25f\U0001d280-\U0001d281\U0001d6a6\U0001df1f-\U0001df24"
    r"\U0001df2b-\U0001df81\U0001df90-\U0001df96\U0001dfcd-\U0001dfff\U0001e6c0-\U0001e6de"
    r"\U0001e6e0-\U0001e6f5\U0001e6fe-\U0001e6ff\U0002b73a-\U0002b73f\U0002b81e"
    r"\U0002cea2-\U0002cead\U000323b0-\U00033479\U0003d000-\U0003fc3f"
) + "]"


@functools.cache
def _newer():
    return regex.compile(NEWER_THAN_TIKTOKEN)


def has_newer_chars(text: str) -> bool:
    """Whether `text` holds a character that tiktoken's Unicode tables do not know yet."""
    return _newer().search(text) is not None


def split_like_tiktoken(compiled, text: str) -> list[str]:
    """The pieces of `text` with the newer characters seen as unassigned, exactly as tiktoken splits.

    Each newer character is replaced by U+0378 (unassigned in every Unicode version) for the
    regex only; the pieces are cut from the original text at the same offsets.
    """
    masked = _newer().sub("\u0378", text)
    return [text[m.start():m.end()] for m in compiled.finditer(masked)]


def fix_surrogates(text: str) -> str:
    """`text`, or, if it is not valid UTF-8, `text` with lone surrogates as U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # tiktoken's Python API does this on a UnicodeEncodeError: lone surrogates become U+FFFD
        # (and a surrogate *pair* spelled as two code points becomes the real character).
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
