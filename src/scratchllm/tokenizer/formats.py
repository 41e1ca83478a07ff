r"""Tokenizer files: our JSON, GPT-2's encoder.json + vocab.bpe, tiktoken's .tiktoken, HF tokenizer.json.

Our JSON (`"type": "bpe"`) is meant to be read by people: `vocab[i]` is the byte string of
token id i, in merge order (ids are ranks), printable ASCII written as itself, a backslash as
`\\` and any other byte as `\xNN` -- so " the" reads as ` the` and "é" as `\xc3\xa9`.

    {"type": "bpe", "version": 1, "name": "...", "pattern": "<split regex>",
     "special_tokens": {"<|endoftext|>": 32760, ...},
     "vocab": ["\\x00", ..., "a", ..., " the", ...]}

>>> escape_bytes(" thé\\".encode())
' th\\xc3\\xa9\\\\'
>>> unescape_bytes(' th\\xc3\\xa9\\\\') == " thé\\".encode()
True
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.patterns import (GPT2_PATTERN, GPT4_PATTERN, KNOWN_SPECIAL_TOKENS, O200K_PATTERN,
                                           resolve_pattern)
from scratchllm.utils.atomic import atomic_write_text

FORMAT_VERSION = 1
_PRINTABLE = {b: chr(b) for b in range(0x20, 0x7F) if b != 0x5C}


def escape_bytes(b: bytes) -> str:
    """Bytes as readable ASCII: printable characters as themselves, others as \\xNN."""
    return "".join(_PRINTABLE.get(x) or ("\\\\" if x == 0x5C else f"\\x{x:02x}") for x in b)


def unescape_bytes(s: str) -> bytes:
    """Inverse of `escape_bytes`."""
    # our escapes are a subset of Python's bytes-literal escapes, so the codec decodes them
    return codecs.escape_decode(s.encode("ascii"))[0]


def read_json(path, fix: str = "pass the path of a tokenizer JSON") -> dict:
    """The parsed JSON of a tokenizer file; a UserError (ending with `fix`) if missing or not JSON."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"tokenizer file '{p}' does not exist; {fix}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"tokenizer file '{p}' is not valid JSON ({e}); re-create it") from None


def save_json(tok: Tokenizer, path) -> None:
    """Write `tok` as our JSON, atomically."""
    n = max(tok.ranks.values()) + 1
    vocab: list[str | None] = [None] * n  # null marks an unused id, if the ranks have gaps
    for b, i in tok.ranks.items():
        vocab[i] = escape_bytes(b)
    head = {"type": "bpe", "version": FORMAT_VERSION, "name": tok.name, "pattern": tok.pattern,
            "special_tokens": tok.special_tokens}
    body = ",\n".join(json.dumps(v) for v in vocab)
    text = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "vocab": [\n' + body + "\n ]\n}\n"
    atomic_write_text(path, text)


def tokenizer_from_dict(d: dict, where: str = "tokenizer") -> Tokenizer:
    """A Tokenizer from the parsed JSON of `save_json`."""
    try:
        ranks = {unescape_bytes(s): i for i, s in enumerate(d["vocab"]) if s is not None}
        return Tokenizer(ranks, d["pattern"], d.get("special_tokens", {}), name=d.get("name", ""))
    except (KeyError, TypeError, ValueError, UnicodeEncodeError) as e:
        raise UserError(f"{where} is not a valid bpe tokenizer file ({type(e).__name__}: {e}); re-create it") from None


def load_json(path) -> Tokenizer:
    """Read our JSON (`"type": "bpe"`)."""
    d = read_json(path)
    if d.get("type") != "bpe":
        raise UserError(f"'{path}' is a {d.get('type')!r} tokenizer, not 'bpe'; use scratchllm.tokenizer.load_tokenizer")
    return tokenizer_from_dict(d, f"'{path}'")


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
    enc = read_json(encoder_json)
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
    return tokenizer_from_hf_dict(read_json(path), name=name or Path(path).parent.name)
