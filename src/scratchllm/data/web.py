"""Web pages in: WARC/WET files (warcio), HTML files and directories, and HTML fields of JSONL,
each page's main text extracted with resiliparse, with its URL and title kept.

What each input is gets decided by its content, not its name: a file whose (gunzipped) bytes
start with `WARC/` is a WARC (or WET) file, one whose first kilobyte holds `<html` or
`<!doctype html` is an HTML page, a `.jsonl` file holds one page a line (`html_field`). In a
directory every file is sniffed so, e.g., the `_sources/*.txt` beside Sphinx pages are skipped.

Why resiliparse (over trafilatura, the other library made for this): on the Python docs pages
it extracts the same main text at 12-15x the speed (5.7-7.2 vs 0.47-0.48 MB/s per core on the
same pages, bench/data_web.py), keeps paragraphs apart with blank lines (the C4/FineWeb line rules need
lines), and installs as one wheel (trafilatura 2.3 also needs lxml_html_clean, which its own
requirements do not pull).

Nothing here is fatal per page: an unreadable WARC record is skipped and counted (reading
resumes at the next record), a page that fails to parse or yields no text is counted in
`WebStats`. This module knows nothing of filters or PII: it turns bytes into `Document`s.

>>> doc = html_document("<html><head><title>Hi</title></head><body><nav><a href=/>Home</a></nav>"
...                     "<main><p>The main text of the page.</p></main></body></html>", "p1", "http://x.org/")
>>> doc.title, doc.text, doc.url
('Hi', 'The main text of the page.', 'http://x.org/')
"""

from __future__ import annotations

import glob
import json
import mmap
import re
import zlib

import numpy as np
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from scratchllm.data.sources import Document, open_text
from scratchllm.errors import UserError

SNIFF_BYTES = 1024
SNIFF_FILES = 2000  # files of a directory looked at to decide whether it holds web pages
# Extraction time grows much faster than linearly with tag nesting (4,000 nested <div>s: 2.6 s,
# 16,000: over a minute); real pages nest < 20 deep (python3-doc: 19), so refuse pathological ones.
MAX_NESTING = 1000
# opening and closing tags, less the void elements and those whose end tag may be left out
_TAG = re.compile(r"<(/?)(?!(?:br|img|meta|input|link|hr|wbr|source|area|base|col|embed|param|track|p|li|"
                  r"option|td|tr|th|dt|dd)\b)[a-zA-Z]", re.IGNORECASE)


@dataclass
class WebStats:
    """What reading web inputs saw besides documents."""
    pages: int = 0                # HTML pages (or WET text records) looked at
    documents: int = 0            # pages that gave text
    bytes: int = 0                # HTML bytes read
    extract_failed: int = 0       # the parser raised
    empty_extraction: int = 0     # parsed, but no main text (boilerplate-only pages)
    malformed_records: int = 0    # unreadable WARC records or JSON lines, skipped
    skipped_non_html: int = 0     # WARC responses of other types (images, PDFs), non-HTML files
    failed_examples: list[str] = field(default_factory=list)

    def note_failure(self, kind: str, where: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.failed_examples) < 5:
            self.failed_examples.append(f"{kind}: {where}")


def sniff(path: Path) -> str | None:
    """'warc', 'html', 'jsonl' or None (not a web input), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head[:2] == b"\x1f\x8b":
        try:  # the first gzip member alone: a damaged later member must not hide a WARC
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
        except zlib.error:
            return None
        if head.startswith(b"WARC/"):
            return "warc"
        return "jsonl" if path.name.lower().endswith((".jsonl.gz", ".json.gz")) else None
    if head.startswith(b"WARC/"):
        return "warc"
    if path.name.lower().endswith((".jsonl", ".ndjson", ".jsonl.xz", ".jsonl.zst")):
        return "jsonl"  # before the HTML test: a JSONL of pages holds "<html" too
    low = head.lower()
    if b"<html" in low or b"<!doctype html" in low:
        return "html"
    return None


def _candidates(item: str) -> list[Path] | None:
    """The files a file, directory or glob names, sorted; None if it names nothing that exists."""
    p = Path(item)
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file())
    if p.is_file():
        return [p]
    if any(ch in item for ch in "*?["):
        return sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
    return None


def web_files(inputs: list[str]) -> list[tuple[Path, str]]:
    """(path, kind) of every web input named by files, directories or globs, sorted for reproducibility."""
    out = []
    for item in inputs:
        candidates = _candidates(item)
        if candidates is None:
            raise UserError(f"input '{item}' does not exist; pass a WARC/WET file, an HTML file or directory, or JSONL")
        found = [(q, kind) for q in candidates if (kind := sniff(q))]
        if not found:
            raise UserError(f"input '{item}' holds no WARC, HTML or JSONL files; check the path")
        out.extend(found)
    return out


def _missing_extra() -> UserError:
    return UserError("reading HTML or WARC needs resiliparse and warcio; run `pip install 'scratchllm[web]'`")


def nesting_depth(html: str) -> int:
    """An upper estimate of how deep the page's tags nest, in one vectorized pass (~35 MB/s).

    >>> nesting_depth("<html><body><div><p>a<br>b</div></body></html>")
    3
    """
    steps = _TAG.findall(html)
    if not steps:
        return 0
    return int(np.cumsum(np.fromiter((-1 if s else 1 for s in steps), np.int32, len(steps))).max())


def html_document(html: str | bytes, doc_id: str, url: str = "", source: str = "") -> Document:
    """The main text and title of one page (raises on unparsable input; the readers count it)."""
    try:  # optional dependency ([web] extra)
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding
        from resiliparse.parse.html import HTMLTree
    except ImportError:
        raise _missing_extra() from None
    if isinstance(html, bytes):  # the page's own encoding (meta charset, else detected)
        html = bytes_to_str(html, detect_encoding(html))
    depth = nesting_depth(html)
    if depth > MAX_NESTING:
        raise ValueError(f"tags nested {depth} deep (more than {MAX_NESTING})")
    tree = HTMLTree.parse(html)
    # subtle: main_content drops nav/header/footer/aside blocks and link lists by their markup
    # and link density; alt texts and form controls are noise in running text.
    text = extract_plain_text(tree, main_content=True, alt_texts=False, form_fields=False, noscript=False)
    return Document(doc_id, text.strip(), source, url=url, title=(tree.title or "").strip())


def _page(html, doc_id: str, url: str, source: str, stats: WebStats) -> Document | None:
    stats.pages += 1
    stats.bytes += len(html) if isinstance(html, bytes) else len(html.encode("utf-8", "replace"))
    try:
        doc = html_document(html, doc_id, url, source)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure is one page lost, never the run
        stats.note_failure("extract_failed", f"{doc_id} ({type(e).__name__}: {str(e)[:80]})")
        return None
    if not doc.text:
        stats.note_failure("empty_extraction", doc_id)
        return None
    stats.documents += 1
    return doc


def _http_is_html(record) -> bool:
    ctype = (record.http_headers.get_header("Content-Type") if record.http_headers else None) or ""
    return "html" in ctype.lower()


def read_warc(path: Path, stats: WebStats, source: str = "") -> Iterator[Document]:
    """HTML responses (extracted) and WET conversion records (already text) of a WARC/WET file.

    A record warcio cannot read ends that iterator; reading resumes at the next record start
    (the next gzip member, or the next `WARC/1.` line of an uncompressed file).
    """
    try:  # optional dependency ([web] extra)
        from warcio.archiveiterator import ArchiveIterator
    except ImportError:
        raise _missing_extra() from None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        marker = b"\x1f\x8b\x08" if mm[:2] == b"\x1f\x8b" else b"WARC/1."
        pos = 0
        while pos < len(mm):
            f.seek(pos)
            it = ArchiveIterator(f)
            try:
                for record in it:
                    yield from _record(record, path, pos + it.offset, stats, source)  # not get_record_offset(): it reads the record away
                return
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - warcio raises several types for a broken record
                stats.note_failure("malformed_records", f"{path}@{pos + (it.offset or 0)} ({type(e).__name__})")
                failed_at = pos + max(it.offset or 0, 0)
                pos = mm.find(marker, failed_at + 1)
                if pos < 0:
                    return


def _record(record, path: Path, offset: int, stats: WebStats, source: str) -> Iterator[Document]:
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    doc_id = record.rec_headers.get_header("WARC-Record-ID") or f"{path}@{offset}"
    if record.rec_type == "conversion":  # WET: the crawler already extracted plain text
        text = record.content_stream().read().decode("utf-8", "replace").strip()
        stats.pages += 1
        stats.bytes += len(text.encode("utf-8"))
        if text:
            stats.documents += 1
            yield Document(doc_id, text, source, url=url)
        else:
            stats.note_failure("empty_extraction", doc_id)
        return
    if record.rec_type not in ("response", "resource"):
        return  # warcinfo, request, metadata: not pages
    if record.rec_type == "response" and not _http_is_html(record):
        stats.skipped_non_html += 1
        return
    doc = _page(record.content_stream().read(), doc_id, url, source, stats)
    if doc:
        yield doc


def read_html_jsonl(path: Path, html_field: str, stats: WebStats, source: str = "") -> Iterator[Document]:
    """One page a line: `html_field` holds the HTML, `url` and `id` are kept when present."""
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                stats.note_failure("malformed_records", f"{path}:{lineno}")
                continue
            html = row.get(html_field) if isinstance(row, dict) else None
            if not isinstance(html, str):
                stats.note_failure("malformed_records", f"{path}:{lineno} (no '{html_field}' field)")
                continue
            doc_id = str(row["id"]) if row.get("id") is not None else f"{path}:{lineno}"
            doc = _page(html, doc_id, str(row.get("url") or ""), source, stats)
            if doc:
                yield doc


def read_web_documents(inputs: list[str], html_field: str = "html", stats: WebStats | None = None,
                       source: str = "", limit: int = 0) -> Iterator[Document]:
    """Stream the main text of every page in WARC/WET files, HTML files/directories and JSONL."""
    stats = stats if stats is not None else WebStats()
    n = 0
    for path, kind in web_files(inputs):
        if kind == "warc":
            docs = read_warc(path, stats, source)
        elif kind == "jsonl":
            docs = read_html_jsonl(path, html_field, stats, source)
        else:
            doc = _page(path.read_bytes(), str(path), path.resolve().as_uri(), source, stats)
            docs = iter([doc] if doc else [])
        for doc in docs:
            yield doc
            n += 1
            if limit and n >= limit:
                return
    if stats.documents == 0 and stats.pages:
        raise UserError(f"no page in {', '.join(inputs)} gave any main text ({stats.extract_failed} failed, "
                        f"{stats.empty_extraction} empty); check that the inputs are HTML pages"
                        + ("" if html_field == "html" else f" and that '{html_field}' holds their HTML"))


def is_web_input(inputs: list[str]) -> bool:
    """True when the first web-like file named (or found in a directory) is a WARC or HTML file."""
    for item in inputs:
        for q in (_candidates(item) or [])[:SNIFF_FILES]:
            kind = sniff(q)
            if kind in ("warc", "html"):
                return True
            if kind == "jsonl":
                return False
    return False

