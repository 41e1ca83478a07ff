"""The corpus used when no data is given: this Python installation's own standard library.

Every Python install ships a few megabytes of well-written English-and-code text: the `.py`
sources of its standard library, with their docstrings and comments. So `scratchllm
speedrun` runs offline, anywhere, with nothing downloaded. Test suites, `site-packages` and
generated files are skipped; files are read in sorted order, so one install always gives the
same corpus (another Python version gives a slightly different one).

`read_corpus(path)` is what `--data PATH` uses: "" means this built-in corpus; otherwise a
.txt file, a directory of .txt files, or .jsonl/.jsonl.gz/.jsonl.xz with a `text` field
(read by `scratchllm.data.sources`). Long texts are cut at line breaks into pieces of about
`piece_bytes`, so even a single file can be split by document into train and val.

>>> docs = list(builtin_documents(max_bytes=200_000))
>>> sum(len(d.encode()) for d in docs) <= 200_000 + 64_000, all(docs)
(True, True)
"""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path
from typing import Iterator

from scratchllm.data.sources import read_documents
from scratchllm.errors import UserError

DEFAULT_MAX_BYTES = 8_000_000       # the built-in corpus cap (the stdlib has ~11 MB outside tests)
PIECE_BYTES = 32_000                # long texts are cut into documents of about this size
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__",
              "ensurepip", "turtledemo"}


@functools.cache
def stdlib_files() -> tuple[Path, ...]:
    """The standard library's .py files outside tests and site-packages, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts)]
    return tuple(sorted(files, key=lambda p: p.relative_to(root).as_posix()))


def split_long(text: str, piece_bytes: int = PIECE_BYTES) -> Iterator[str]:
    """Cut `text` at line breaks into pieces of at least `piece_bytes` characters (the last may be shorter)."""
    start = 0
    while start < len(text):
        cut = text.find("\n", start + piece_bytes)
        end = len(text) if cut < 0 else cut + 1
        yield text[start:end]
        start = end


def _capped(texts: Iterator[str], max_bytes: int) -> Iterator[str]:
    total = 0
    for text in texts:
        for piece in split_long(text):
            if not piece.strip():
                continue
            if max_bytes and total >= max_bytes:
                return
            total += len(piece.encode("utf-8"))
            yield piece


def builtin_documents(max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[str]:
    """The built-in corpus as documents (one a source file, long files cut), up to `max_bytes`."""
    def texts() -> Iterator[str]:
        for path in stdlib_files():
            try:
                yield path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # a few stdlib files are deliberately in other encodings
    return _capped(texts(), max_bytes)


def read_corpus(path: str = "", max_bytes: int = 0, encoding: str = "utf-8") -> Iterator[str]:
    """Documents from `path` ("" = built-in corpus), at most `max_bytes` of text (0 = all / the default cap).

    `encoding`: of .txt files (see data.sources: binary data is refused, invalid bytes counted)."""
    if not path:
        return builtin_documents(max_bytes or DEFAULT_MAX_BYTES)
    if not Path(path).exists():
        raise UserError(f"data path '{path}' does not exist; pass an existing .txt, directory or .jsonl "
                        "file with --data (or leave --data out for the built-in corpus)")
    return _capped((doc.text for doc in read_documents([path], encoding=encoding)), max_bytes)
