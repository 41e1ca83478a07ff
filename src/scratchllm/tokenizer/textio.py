"""Text for tokenizer training and stats: .txt files, directories, globs, .jsonl(.gz/.xz).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.txt").write_text("hello")
>>> _ = (d / "b.jsonl").write_text('{"text": "world"}\\n')
>>> list(read_texts([str(d)]))
['hello', 'world']
"""

from __future__ import annotations

import glob
import gzip
import json
import lzma
from pathlib import Path
from typing import Iterator

from scratchllm.errors import UserError


def expand(inputs: list[str]) -> list[Path]:
    """Files named by `inputs` (files, directories searched recursively, globs), sorted."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).is_file())
            if not found:
                raise UserError(f"input '{item}' matches no file; pass existing text or .jsonl files")
            out += found
    return out


def _open(path: Path):
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    return opener(path, "rt", encoding="utf-8", errors="replace")


def read_texts(inputs: list[str], text_field: str = "text", max_bytes: int | None = None) -> Iterator[str]:
    """Documents' text: a .txt file is one document, a JSONL line one document (its `text_field`)."""
    budget = max_bytes if max_bytes is not None else float("inf")
    for path in expand(inputs):
        is_jsonl = ".jsonl" in path.suffixes or ".ndjson" in path.suffixes
        with _open(path) as f:
            docs = (_field(line, text_field, path) for line in f if line.strip()) if is_jsonl else [f.read()]
            for text in docs:
                if text is None:
                    continue
                n = len(text.encode("utf-8"))
                if n >= budget:
                    # cut the last document to fit (by characters: a safe, close bound)
                    yield text[:int(budget)]
                    return
                budget -= n
                yield text


def _field(line: str, field: str, path: Path) -> str | None:
    try:
        value = json.loads(line).get(field)
    except (json.JSONDecodeError, AttributeError):
        return None  # one malformed line in a large file is skipped, not fatal
    return value if isinstance(value, str) else None
