"""Other libraries' tokenizer files: GPT-2's encoder.json + vocab.bpe, tiktoken's .tiktoken, HF tokenizer.json.

Each is read into, or written from, our `Tokenizer` with the same ids; our own JSON file is
bpe_json.py's (through `Tokenizer.save`/`load`).

>>> table = bytes_to_unicode()
>>> table[ord("a")], table[ord(" ")]
('a', 'Ġ')
>>> tok = Tokenizer({bytes([i]): i for i in range(256)} | {b"ab": 256}, "gpt2")
>>> hf_merges(tok.ranks)
[(b'a', b'b')]
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.patterns import (GPT2_PATTERN, GPT4_PATTERN, KNOWN_SPECIAL_TOKENS, O200K_PATTERN,
                                           resolve_pattern)
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.files import read_json


def _read_tokenizer_json(path) -> dict:
    return read_json(path, "tokenizer file", "pass the path of a tokenizer JSON", "re-create it")


# ---- GPT-2: encoder.json + vocab.bpe ----
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (used by encoder.json and HF's ByteLevel).

    Bytes that print as themselves keep their character; the 68 others are shifted to U+0100+.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _unicode_to_bytes(s: str, decoder: dict[str, int]) -> bytes:
    return bytes(decoder[ch] for ch in s)


def import_gpt2(encoder_json, vocab_bpe, name: str = "gpt2") -> Tokenizer:
    """GPT-2's original files: ids from encoder.json; tokens no merge makes (`<|endoftext|>`) are special."""
    enc = _read_tokenizer_json(encoder_json)
    try:
        lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise UserError(f"merges file '{vocab_bpe}' does not exist; pass GPT-2's vocab.bpe") from None
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    mergeable = set(decoder)
    for line in lines[1:]:  # first line is a version comment
        if line.strip():
            left, right = line.split()
            mergeable.add(left + right)
    ranks, specials = {}, {}
    for s, i in enc.items():
        if s in mergeable:
            ranks[_unicode_to_bytes(s, decoder)] = i
        else:
            specials[s] = i
    return Tokenizer(ranks, GPT2_PATTERN, specials, name=name)


# ---- tiktoken rank files ----
def read_tiktoken(path) -> dict[bytes, int]:
    """A .tiktoken file: one `base64(token) rank` a line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"tiktoken file '{p}' does not exist; pass a .tiktoken rank file")
    ranks = {}
    for n, line in enumerate(p.read_bytes().splitlines(), 1):
        if line:
            try:
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
            except ValueError:
                raise UserError(f"line {n} of '{p}' is not 'base64 rank'; pass a .tiktoken file") from None
    return ranks


def write_tiktoken(tok: Tokenizer, path) -> None:
    """Write the mergeable ranks of `tok` as a .tiktoken file (special tokens are not part of it)."""
    lines = [f"{base64.b64encode(b).decode()} {i}" for b, i in sorted(tok.ranks.items(), key=lambda x: x[1])]
    atomic_write_text(path, "\n".join(lines) + "\n")


def import_tiktoken(path, pattern: str, special_tokens: dict[str, int] | None = None) -> Tokenizer:
    """A .tiktoken file with a split pattern; OpenAI's special tokens are added for gpt2/cl100k/o200k."""
    key = {"cl100k_base": "cl100k", "gpt4": "cl100k", "o200k_base": "o200k", "r50k": "gpt2"}.get(pattern, pattern)
    specials = KNOWN_SPECIAL_TOKENS.get(key, {}) if special_tokens is None else special_tokens
    name = {"cl100k": "cl100k_base", "o200k": "o200k_base"}.get(key, Path(path).stem)
    return Tokenizer(read_tiktoken(path), resolve_pattern(key), specials, name=name)


# ---- Hugging Face tokenizer.json ----
def hf_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Merges that make HF's merge-list BPE act as tiktoken's rank BPE: every split of every
    token into two tokens, ordered by the rank of the token they form."""
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda x: x[1]):
        local = [(ranks[tok[:i]], ranks[tok[i:]], tok[:i], tok[i:]) for i in range(1, len(tok))
                 if tok[:i] in ranks and tok[i:] in ranks]
        merges.extend((x, y) for _, _, x, y in sorted(local))
    return merges


def _onig_pattern(pattern: str) -> str:
    r"""The split regex for HF's Oniguruma engine, which reads `{n,m}+` as "repeat {n,m} one or more
    times" rather than possessive. In the built-in patterns the possessive `\p{N}{1,3}+` ends its
    alternative, so the greedy `{1,3}` matches exactly the same pieces."""
    return re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", pattern)


def to_hf_dict(tok: Tokenizer) -> dict:
    """`tok` as a HF `tokenizers` tokenizer.json: Split(regex) + ByteLevel(use_regex=False) + BPE."""
    enc = bytes_to_unicode()
    u = lambda b: "".join(enc[x] for x in b)  # noqa: E731
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s, i in sorted(tok.special_tokens.items(), key=lambda x: x[1])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": _onig_pattern(tok.pattern)}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  # a piece that is a whole token is that token, as in tiktoken
                  "ignore_merges": True,
                  "vocab": {u(b): i for b, i in sorted(tok.ranks.items(), key=lambda x: x[1])},
                  "merges": [[u(x), u(y)] for x, y in hf_merges(tok.ranks)]},
    }


def export_hf(tok: Tokenizer, path) -> None:
    """Write a tokenizer.json that `tokenizers.Tokenizer.from_file` loads and that encodes like `tok`."""
    atomic_write_text(path, json.dumps(to_hf_dict(tok), ensure_ascii=False))


def tokenizer_from_hf_dict(d: dict, name: str = "") -> Tokenizer:
    """A byte-level BPE tokenizer.json (GPT-2, Llama-3 style) as a Tokenizer; ids are taken as ranks."""
    model = d.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise UserError("tokenizer.json has no byte-level BPE model; only byte-level BPE tokenizers can be imported")
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    vocab_ids = set(model["vocab"].values())
    # subtle: GPT-2's file lists <|endoftext|> in the BPE vocab *and* as a special added token; a
    # special token is matched whole, never made by merges, so it leaves the ranks
    specials = {a["content"]: a["id"] for a in d.get("added_tokens") or []
                if a.get("special") or a["id"] not in vocab_ids}
    try:
        ranks = {_unicode_to_bytes(s, decoder): i for s, i in model["vocab"].items() if s not in specials}
    except KeyError:
        raise UserError("tokenizer.json vocabulary is not byte-level (GPT-2 byte alphabet); "
                        "only byte-level BPE tokenizers can be imported") from None
    return Tokenizer(ranks, _hf_pattern(d.get("pre_tokenizer")), specials, name=name)


def _hf_pattern(pre: dict | None) -> str:
    """The split regex of a HF pre-tokenizer: a Split's regex, else GPT-2's for ByteLevel(use_regex)."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    for step in steps:
        if step.get("type") == "Split" and "Regex" in step.get("pattern", {}):
            pat = step["pattern"]["Regex"]
            # our own export wrote a built-in pattern in its Oniguruma spelling: take the original
            return next((b for b in (GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN) if _onig_pattern(b) == pat), pat)
    for step in steps:
        if step.get("type") == "ByteLevel" and step.get("use_regex", True):
            return GPT2_PATTERN
    raise UserError("tokenizer.json has no Split regex or ByteLevel pre-tokenizer; cannot tell how it splits text")


def import_hf(path, name: str = "") -> Tokenizer:
    """Read a byte-level BPE HF tokenizer.json file."""
    return tokenizer_from_hf_dict(_read_tokenizer_json(path), name=name or Path(path).parent.name)
