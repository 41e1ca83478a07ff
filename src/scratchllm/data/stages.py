"""The per-document work (clean -> filter -> fingerprint) on a pool of processes, and the
stand-alone stage commands built on it (`scratchllm data clean|filter|dedup|mix`).

Documents travel to workers in batches of ~4 MB (one pickle per batch, not per document) and
come back in input order, with at most two batches per worker in flight, so memory stays
bounded by the batch size whatever the corpus size. Each worker times its stages, so the
benchmark can report MB/s per stage.

>>> from scratchllm.data.sources import Document
>>> docs = [Document("a", "Hello\\r\\nworld  "), Document("b", "x")]
>>> [(r.id, r.text) for r in process_documents(docs, Work(clean=CleanConfig()), workers=1)]
[('a', 'Hello\\nworld'), ('b', 'x')]
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from scratchllm.data.clean import CleanConfig, clean_text
from scratchllm.data.dedup import DedupConfig, Deduplicator, LineDeduplicator, fingerprint
from scratchllm.data.filters import Drop, FilterConfig
from scratchllm.data.langid import identify
from scratchllm.data.minhash import MinHasher
from scratchllm.data.mix import copies, plan_rates
from scratchllm.data.quality import QualityModel, accuracy, split_heldout, train
from scratchllm.data.sources import Document
from scratchllm.data.webrules import WebRules, scrub_pii, screen
from scratchllm.utils.atomic import atomic_directory, atomic_write_jsonl, atomic_write_text
from scratchllm.utils.pool import batched, ordered_map

BATCH_BYTES = 4_000_000


@dataclass
class Work:
    """Which steps run on each document (None: skip that step)."""
    clean: CleanConfig | None = None
    filter: FilterConfig | None = None
    dedup: DedupConfig | None = None
    web: WebRules | None = None     # PII scrubbing (with cleaning) and the URL/C4/FineWeb/quality filters


@dataclass
class Result:
    """One processed document: its cleaned text, or the rule that dropped it, and its fingerprint."""
    id: str
    source: str
    text: str                   # cleaned text ("" when dropped)
    bytes_in: int
    drop: Drop | None = None
    key: bytes = b""
    sig: np.ndarray | None = None
    process: bool = True
    url: str = ""
    title: str = ""
    pii: dict = field(default_factory=dict)   # replacements per PII kind


@dataclass
class Timings:
    """CPU seconds spent in each stage (summed over workers) and bytes that entered it.

    CPU time, not wall time: on a shared machine it measures the code, not the neighbours.
    """
    seconds: dict = field(default_factory=lambda: collections.defaultdict(float))
    bytes: dict = field(default_factory=lambda: collections.defaultdict(int))

    def add(self, stage: str, seconds: float, nbytes: int) -> None:
        self.seconds[stage] += seconds
        self.bytes[stage] += nbytes

    def merge(self, other: "Timings") -> None:
        for k in other.seconds:
            self.add(k, other.seconds[k], other.bytes[k])


_worker: dict = {}


def _init(work: Work) -> None:
    _worker["work"] = work
    _worker["web"] = work.web.prepared() if work.web else None  # compiled lists, loaded model: once a process
    _worker["hasher"] = MinHasher(work.dedup.num_perm, work.dedup.shingle, work.dedup.seed) \
        if work.dedup and work.dedup.near else None


def _one(doc: Document, process: bool, work: Work, hasher, t: Timings) -> Result:
    text = doc.text
    nbytes = len(text.encode("utf-8"))
    res = Result(doc.id, doc.source, "", nbytes, process=process, url=doc.url, title=doc.title)
    if process and work.clean:
        t0 = time.process_time()
        text = clean_text(text, work.clean)
        t.add("clean", time.process_time() - t0, nbytes)
    if process and work.web:
        text, res.pii = scrub_pii(text, _worker["web"], t)
    size = len(text.encode("utf-8")) if process and work.clean else nbytes
    if process and (work.filter or (work.web and work.web.filters)):
        t0 = time.process_time()
        text, res.drop = screen(text, doc.url, work.filter, _worker["web"], t)
        t.add("filter", time.process_time() - t0, size)
        if res.drop:
            res.text = text[:300]  # an excerpt for the report's examples
            return res
    if process and work.dedup:
        t0 = time.process_time()
        res.key, res.sig = fingerprint(text, work.dedup, hasher)
        t.add("minhash", time.process_time() - t0, size)
    res.text = text
    return res


def _process_batch(batch: list[tuple[Document, bool]]) -> tuple[list[Result], Timings]:
    t = Timings()
    return [_one(doc, process, _worker["work"], _worker["hasher"], t) for doc, process in batch], t


def process_documents(docs: Iterable[Document | tuple[Document, bool]], work: Work, workers: int = 2,
                      timings: Timings | None = None) -> Iterator[Result]:
    """Clean/filter/fingerprint documents on `workers` processes; results in input order.

    Items may be `(document, process)` pairs: process=False passes a document through untouched.
    """
    items = ((d, True) if isinstance(d, Document) else d for d in docs)
    timings = timings if timings is not None else Timings()
    batches = batched(items, BATCH_BYTES, size=lambda item: len(item[0].text))
    for _, (results, t) in ordered_map(_process_batch, batches, workers, _init, (work,)):
        timings.merge(t)
        yield from results


def run_clean(docs: Iterable[Document], cfg: CleanConfig, out: Path, workers: int, web: WebRules | None = None,
              pii_counts: dict | None = None) -> int:
    """`scratchllm data clean`: cleaned documents as JSONL {"id", "text"} (+ url, title, language
    for web pages); PII replaced per `web.pii`, counted into `pii_counts`; returns the count."""
    results = tqdm(process_documents(docs, Work(clean=cfg, web=web), workers), desc="clean", unit="doc")
    pii_counts = pii_counts if pii_counts is not None else {}

    def rows():
        for r in results:
            for kind, n in r.pii.items():
                pii_counts[kind] = pii_counts.get(kind, 0) + n
            if r.url or r.title:
                yield {"id": r.id, "text": r.text, "url": r.url, "title": r.title, "language": identify(r.text)[0]}
            else:
                yield {"id": r.id, "text": r.text}

    return atomic_write_jsonl(out, rows())


def run_filter(docs: Iterable[Document], cfg: FilterConfig | None, out: Path, workers: int,
               web: WebRules | None = None) -> tuple[int, int]:
    """`scratchllm data filter`: kept.jsonl and dropped.jsonl (id, rule, value) in `out`."""
    kept = dropped = 0
    with atomic_directory(out) as tmp, open(tmp / "kept.jsonl", "w", encoding="utf-8") as fk, \
            open(tmp / "dropped.jsonl", "w", encoding="utf-8") as fd:
        for r in tqdm(process_documents(docs, Work(filter=cfg, web=web), workers), desc="filter", unit="doc"):
            if r.drop:
                dropped += 1
                fd.write(json.dumps({"id": r.id, "rule": r.drop.rule, "value": r.drop.value}) + "\n")
            else:
                kept += 1
                row = {"id": r.id, "text": r.text, **({"url": r.url} if r.url else {})}
                fk.write(json.dumps(row, ensure_ascii=False) + "\n")
    return kept, dropped


def run_dedup(docs: Iterable[Document], cfg: DedupConfig, out: Path, workers: int,
              lines: LineDeduplicator | None = None) -> tuple[int, int]:
    """`scratchllm data dedup`: documents.jsonl (kept) and clusters.jsonl (id lists) in `out`.

    With `lines`, lines an earlier document had are cut first (in input order, in this process)
    and documents left under `cfg.lines_min_words` words are dropped before hashing.
    """
    index = Deduplicator(cfg)
    if lines is not None:
        docs = (d for d in (replace(d, text=lines.strip(d.text)) for d in docs)
                if len(d.text.split()) >= cfg.lines_min_words)
    with atomic_directory(out) as tmp:
        spool = tmp / ".all.jsonl"
        with open(spool, "w", encoding="utf-8") as f:
            for r in tqdm(process_documents(docs, Work(dedup=cfg), workers), desc="dedup: hash", unit="doc"):
                index.add(r.id, len(r.text), r.key, r.sig)
                f.write(json.dumps({"id": r.id, "text": r.text}, ensure_ascii=False) + "\n")
        result = index.finish()
        with open(spool, encoding="utf-8") as src:
            rows = (json.loads(line) for line, keep in zip(src, result.keep) if keep)
            kept = atomic_write_jsonl(tmp / "documents.jsonl", rows)
        spool.unlink()
        atomic_write_text(tmp / "clusters.jsonl", "".join(json.dumps(c.ids) + "\n" for c in result.clusters))
    return kept, len(result.clusters)


def run_mix(sources: dict[str, list[Document]], weights: dict[str, float], out: Path, seed: int,
            total: int = 0, max_epochs: float = 1.0) -> dict[str, float]:
    """`scratchllm data mix`: sample sources to target shares of UTF-8 bytes; returns the rates."""
    sizes = {name: float(sum(len(d.text.encode("utf-8")) for d in docs)) for name, docs in sources.items()}
    rates = plan_rates(sizes, weights, total=total, max_epochs=max_epochs)
    rows = [{"id": d.id, "source": name, "text": d.text}
            for name, docs in sources.items() for d in docs for _ in range(copies(rates[name], d.id, seed))]
    np.random.default_rng(seed).shuffle(rows)
    atomic_write_jsonl(out, tqdm(rows, desc="mix", unit="doc"))
    return rates


def chunks(text: str, max_chars: int) -> Iterator[str]:
    """Pieces of at most ~max_chars, cut at paragraph breaks: a book becomes page-sized examples."""
    piece, size = [], 0
    for para in text.split("\n\n"):
        if size + len(para) > max_chars and piece:
            yield "\n\n".join(piece)
            piece, size = [], 0
        piece.append(para)
        size += len(para) + 2
    if piece:
        yield "\n\n".join(piece)


def run_quality_train(reference: Iterable[Document], web: Iterable[Document], out: Path, heldout: float = 0.2,
                      chunk_chars: int = 3000, max_examples: int = 5000, epochs: int = 10, seed: int = 0) -> QualityModel:
    """`scratchllm data quality-train`: reference (1) vs web (0) documents -> a model file whose
    metadata holds its accuracy on a held-out `heldout` share of both classes."""
    texts, labels = [], []
    for label, docs in ((1, reference), (0, web)):
        n = 0
        for doc in docs:
            for piece in chunks(doc.text, chunk_chars):
                if n >= max_examples:
                    break
                if piece.strip():
                    texts.append(piece)
                    labels.append(label)
                    n += 1
    train_rows, test_rows = split_heldout(len(texts), heldout, seed)
    model = train([texts[i] for i in train_rows], [labels[i] for i in train_rows], epochs=epochs, seed=seed)
    model.heldout_accuracy = round(accuracy(model, [texts[i] for i in test_rows], [labels[i] for i in test_rows]), 4)
    model.trained_on = {"reference": labels.count(1), "web": labels.count(0), "heldout": len(test_rows),
                        "chunk_chars": chunk_chars}
    model.save(str(out))
    return model
