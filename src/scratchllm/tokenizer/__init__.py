"""Byte-level BPE tokenizer: train, encode/decode with tiktoken parity, read and write tokenizer files.

>>> from scratchllm.tokenizer import Tokenizer
>>> tok = Tokenizer.train(["the cat sat on the mat"] * 10, vocab_size=270, progress=False)
>>> tok.decode(tok.encode("the mat")), tok.vocab_size, tok.eot_id
('the mat', 270, 262)
"""

from __future__ import annotations

from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.char import CharTokenizer
from scratchllm.tokenizer.formats import tokenizer_from_hf_dict
from scratchllm.utils.files import read_json

__all__ = ["CharTokenizer", "Tokenizer", "load_tokenizer"]


def load_tokenizer(path):
    """Any tokenizer file by its `"type"`: "bpe" -> Tokenizer, "char" -> CharTokenizer.

    A Hugging Face tokenizer.json (byte-level BPE) is imported as a Tokenizer too.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    d = read_json(p, "tokenizer file", "pass a tokenizer JSON or a run directory", "re-create it")
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "bpe":
        return Tokenizer.from_dict(d, f"'{p}'")
    if kind == "char":
        return CharTokenizer.load(p)
    if isinstance(d, dict) and isinstance(d.get("model"), dict):
        return tokenizer_from_hf_dict(d, name=p.parent.name)
    raise UserError(f"'{p}' has tokenizer type {kind!r}; expected 'bpe' or 'char' (or a HF tokenizer.json)")
