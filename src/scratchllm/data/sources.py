"""Read raw documents from files: .txt, directories and globs of .txt, JSONL (plain, .gz, .xz,
.zst), parquet and Hugging Face `datasets` (streaming).

Every document gets a stable id: the JSONL/parquet `id` field when there is one, else
`path:line` (JSONL, parquet row) or the path itself (one .txt file = one document). A malformed
JSON line is skipped and counted in `ReadStats`, never fatal, because one bad line in a
multi-gigabyte crawl should not cost the whole run.

A .txt file is checked before it becomes a document: NUL bytes, or a large share of bytes
that are not valid in its encoding (UTF-8 unless `encoding` says otherwise), mean binary data,
which is refused by name rather than trained on. A few invalid bytes (Latin-1 text read as
UTF-8) are replaced with U+FFFD, counted in `ReadStats.replaced` and warned about once, with
the fix (`--encoding latin-1`).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
>>> _ = p.write_text('{"text": "hello"}\\nnot json\\n{"id": "x", "text": "world"}\\n')
>>> stats = ReadStats()
>>> [(d.id.split("/")[-1], d.text) for d in read_documents([str(p)], stats=stats)]
[('a.jsonl:1', 'hello'), ('x', 'world')]
>>> stats.malformed
1
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import lzma
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from scratchllm.errors import UserError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.xz", ".jsonl.zst", ".json.gz", ".ndjson")
# Above this share of undecodable bytes a file is not text in its encoding (Latin-1 prose read as
# UTF-8 stays under ~5%; random or compressed bytes are ~50% and more).
BINARY_SHARE = 0.2
_ESCAPED = re.compile("[\udc80-\udcff]")  # undecodable bytes, as errors="surrogateescape" keeps them


@dataclass
class Document:
    """One document: a stable id, its text, the name of the source it came from, and for web
    pages their URL and title."""
    id: str
    text: str
    source: str = ""
    url: str = ""
    title: str = ""


@dataclass
class ReadStats:
    """What reading saw besides documents: skipped lines and why."""
    documents: int = 0
    bytes: int = 0
    malformed: int = 0
    missing_field: int = 0
    replaced: int = 0              # bytes of .txt files not valid in their encoding, replaced with U+FFFD
    malformed_examples: list[str] = field(default_factory=list)

    def note_malformed(self, where: str) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < 5:
            self.malformed_examples.append(where)


def expand_paths(inputs: list[str]) -> list[Path]:
    """Files named by `inputs` (files, directories, globs), sorted, so runs are reproducible."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and _format_of(q) is not None)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
        elif p.is_file():
            found = [p]
        else:
            raise UserError(f"input '{item}' does not exist; pass an existing file, directory or glob")
        if not found:
            raise UserError(f"input '{item}' matched no .txt/.jsonl/.parquet files; check the path or pattern")
        out.extend(found)
    return out


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".txt"):
        return "txt"
    return None


def open_text(path: Path, encoding: str = "utf-8", errors: str = "replace") -> io.TextIOBase:
    """Open a possibly compressed text file (.gz, .xz, .zst) for reading as `encoding`."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return gzip.open(path, "rt", encoding=encoding, errors=errors)
        if name.endswith(".xz"):
            return lzma.open(path, "rt", encoding=encoding, errors=errors)
        if name.endswith(".zst"):
            try:  # optional dependency: zstandard is the `data` extra
                import zstandard
            except ImportError:
                raise UserError(f"reading '{path}' needs zstandard; run `pip install 'scratchllm[data]'`") from None
            raw = open(path, "rb")
            return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True),
                                    encoding=encoding, errors=errors)
        return open(path, "r", encoding=encoding, errors=errors, newline="")
    except LookupError:
        raise UserError(f"unknown text encoding '{encoding}'; pass a Python codec name such as utf-8 or latin-1") from None
    except OSError as e:
        raise UserError(f"cannot read '{path}' ({e.strerror or e}); check the path and its permissions") from None


def read_jsonl(path: Path, text_field: str, id_field: str, stats: ReadStats, source: str) -> Iterator[Document]:
    with open_text(path) as f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    stats.note_malformed(f"{path}:{lineno}")
                    continue
                if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                    stats.missing_field += 1
                    continue
                doc_id = str(row[id_field]) if row.get(id_field) is not None else f"{path}:{lineno}"
                yield Document(doc_id, row[text_field], source, url=str(row.get("url") or ""))
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise UserError(f"'{path}' is corrupt or truncated ({e}); re-download or remove it") from None


def read_parquet(path: Path, text_field: str, id_field: str, stats: ReadStats, source: str) -> Iterator[Document]:
    try:  # optional dependency: pyarrow is the `data` extra
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"reading '{path}' needs pyarrow; run `pip install 'scratchllm[data]'`") from None
    pf = pq.ParquetFile(path)
    if text_field not in pf.schema_arrow.names:
        raise UserError(f"parquet file '{path}' has no column '{text_field}' (columns: "
                        f"{', '.join(pf.schema_arrow.names)}); set the text field with --field")
    columns = [text_field] + ([id_field] if id_field in pf.schema_arrow.names else [])
    row = 0
    for batch in pf.iter_batches(columns=columns, batch_size=1024):  # streams: one batch in memory
        data = batch.to_pydict()
        ids = data.get(id_field)
        for i, text in enumerate(data[text_field]):
            row += 1
            if not isinstance(text, str):
                stats.missing_field += 1
                continue
            yield Document(str(ids[i]) if ids and ids[i] is not None else f"{path}:{row}", text, source)


def checked_text(text: str, where: Path | str, encoding: str, stats: ReadStats) -> str:
    """`text` read with errors="surrogateescape", refused if binary, else with bad bytes as U+FFFD.

    >>> checked_text("plain text", "a.txt", "utf-8", ReadStats())
    'plain text'
    >>> checked_text("\\x7fELF\\x00\\x00", "a.out", "utf-8", ReadStats())
    Traceback (most recent call last):
    ...
    scratchllm.errors.UserError: 'a.out' looks like binary data, not text (2 NUL bytes); pass a text file, or its encoding with --encoding if it is text in another one
    """
    bad = len(_ESCAPED.findall(text))
    nul = text.count("\x00") if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "ascii") else 0
    if nul or (text and bad / len(text) > BINARY_SHARE):
        why = f"{nul:,} NUL bytes" if nul else f"{bad / len(text):.0%} of its bytes are not valid {encoding}"
        raise UserError(f"'{where}' looks like binary data, not text ({why}); pass a text file, or its "
                        "encoding with --encoding if it is text in another one")
    if not bad:
        return text
    stats.replaced += bad
    warnings.warn(f"{bad:,} bytes of '{where}' are not valid {encoding} and were replaced with U+FFFD; "
                  "if the file is in another encoding, pass it with --encoding (e.g. --encoding latin-1)",
                  stacklevel=2)
    return _ESCAPED.sub("\ufffd", text)


def read_txt(path: Path, source: str, stats: ReadStats | None = None, encoding: str = "utf-8") -> Iterator[Document]:
    with open_text(path, encoding, errors="surrogateescape") as f:
        text = f.read()
    yield Document(str(path), checked_text(text, path, encoding, stats or ReadStats()), source)


def read_hf(name: str, text_field: str, id_field: str, split: str, stats: ReadStats, source: str,
            config: str | None = None) -> Iterator[Document]:
    """Stream a Hugging Face dataset (`hf:NAME` in a recipe) without downloading it whole."""
    try:  # optional dependency: datasets is the `data` extra
        import datasets
    except ImportError:
        raise UserError(f"the source 'hf:{name}' needs the datasets library; run `pip install 'scratchllm[data]'`") from None
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as e:  # network, auth, missing dataset: all need the same fix from a person
        raise UserError(f"cannot open Hugging Face dataset '{name}' ({type(e).__name__}: {str(e)[:200]}); "
                        f"check the name and your network") from None
    for i, row in enumerate(ds):
        if not isinstance(row.get(text_field), str):
            stats.missing_field += 1
            continue
        yield Document(str(row[id_field]) if row.get(id_field) is not None else f"hf:{name}:{i}", row[text_field], source)


def read_documents(inputs: list[str], text_field: str = "text", id_field: str = "id", stats: ReadStats | None = None,
                   source: str = "", hf_split: str = "train", limit: int = 0,
                   encoding: str = "utf-8") -> Iterator[Document]:
    """Stream documents from files/dirs/globs, or `hf:NAME[:CONFIG]` Hugging Face datasets.

    `limit` > 0 stops after that many documents (for quick looks and tests); `encoding`: of .txt files.
    """
    stats = stats if stats is not None else ReadStats()
    missing_before = stats.missing_field

    def _all() -> Iterator[Document]:
        for item in inputs:
            if item.startswith("hf:"):
                name, _, config = item[3:].partition(":")
                yield from read_hf(name, text_field, id_field, hf_split, stats, source, config or None)
                continue
            for path in expand_paths([item]):
                fmt = _format_of(path) or "txt"
                if fmt == "jsonl":
                    yield from read_jsonl(path, text_field, id_field, stats, source)
                elif fmt == "parquet":
                    yield from read_parquet(path, text_field, id_field, stats, source)
                else:
                    yield from read_txt(path, source, stats, encoding)

    for doc in _all():
        stats.documents += 1
        stats.bytes += len(doc.text.encode("utf-8"))
        yield doc
        if limit and stats.documents >= limit:
            return
    if stats.documents == 0 and stats.missing_field > missing_before:
        raise UserError(f"no document in {', '.join(inputs)} has a text field '{text_field}'; "
                        f"name the right field with --field")


def read_texts(inputs: list[str], text_field: str = "text", max_bytes: int | None = None,
               encoding: str = "utf-8") -> Iterator[str]:
    """The documents' text alone, stopping after `max_bytes` of UTF-8 (the last one cut to fit).

    What tokenizer training and stats read: a sample of a corpus, bounded in size.
    """
    budget = max_bytes if max_bytes is not None else float("inf")
    for doc in read_documents(inputs, text_field=text_field, encoding=encoding):
        n = len(doc.text.encode("utf-8"))
        if n >= budget:
            yield doc.text[: int(budget)]  # cut by characters: a safe, close bound on the bytes
            return
        budget -= n
        yield doc.text
