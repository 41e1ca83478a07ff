"""`scratchllm data prepare`: raw sources -> cleaned, filtered, deduplicated, mixed token shards.

Four passes, each streaming, so memory grows with the number of documents, never their size:

  1. scan     read every source (web pages: main text extracted as read, `data.web`); clean,
              scrub PII, filter and fingerprint each document on worker processes
              (`stages.process_documents`); survivors go to a spool file on disk (web: lines
              an earlier page had cut first), fingerprints into the dedup index.
  2. dedup    union-find clusters of exact and near duplicates; keep one per cluster.
  3. mix      sampling rates per source from the target token shares (`mix.plan_rates`, with
              each source's tokens per byte measured on a sample); a seeded shuffle of the
              (document, copy) list. A document is val or train by a hash of its id, so all
              copies of one document land in the same split and nothing leaks. A corpus of
              one long document (a single book) is first cut at line breaks into ~32 kB
              pieces, split the same way, so it still gets a validation set.
  4. tokenize encode on worker processes (`data.tokenize`'s streamed encoder) into shards.

The output directory holds the shards, tokenizer.json, meta.json (the token-directory
contract), manifest.json (sources, recipe, counts per stage, tokens, tokenizer hash),
report.md and clusters.jsonl. It appears only when complete; the same recipe gives
byte-identical shards.

    scratchllm data prepare --recipe gutenberg --tokenizer tok.json --out data/gut

>>> import tempfile
>>> from scratchllm.data.recipe import recipe_from_dict
>>> from scratchllm.tokenizer import Tokenizer
>>> d = tempfile.mkdtemp()
>>> Tokenizer.train(["the cat sat on the mat"] * 10, vocab_size=270, progress=False).save(d + "/tok.json")
>>> recipe = recipe_from_dict({"tokenizer": d + "/tok.json", "workers": 1, "val_fraction": 0.2,
...     "filter": {"enabled": False}, "sources": [  # one-line documents: no quality rule would keep them
...     {"name": "toy", "type": "templates", "count": 30, "templates": ["{who} saw the {what} number {n}."],
...      "slots": {"who": ["Ann", "Bo", "Cy"], "what": ["cat", "dog", "mat"], "n": [str(i) for i in range(30)]}}]})
>>> manifest = prepare(recipe, d + "/out", progress=False)
>>> sorted(manifest["splits"]), manifest["splits"]["train"]["documents"] > 0
(['train', 'val'], True)
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from scratchllm.config import dumps_toml
from scratchllm.data import report as report_mod
from scratchllm.data.builtin import PIECE_BYTES
from scratchllm.data.dedup import Deduplicator, LineDeduplicator
from scratchllm.data.filters import Drop
from scratchllm.data.mix import copies, plan_rates, unit_hash
from scratchllm.data.recipe import Recipe
from scratchllm.data.shards import ShardWriter
from scratchllm.data.sources import Document, ReadStats, expand_paths, read_documents
from scratchllm.data.stages import Timings, Work, process_documents
from scratchllm.data.synthetic import synthetic_documents
from scratchllm.data.tokenize import encode_documents, with_fast_backend
from scratchllm.data.web import WebStats, is_web_input, read_web_documents, web_files
from scratchllm.errors import UserError
from scratchllm.tokenizer import load_tokenizer
from scratchllm.utils.atomic import atomic_directory, atomic_write_text
from scratchllm.utils.outdir import check_output_dir

EXAMPLES_PER_RULE = 3
# What the output directory holds (utils/outdir.py's `owned`): an earlier output may be replaced.
PREPARED_ENTRIES = ("train-*.bin", "val-*.bin", "tokenizer.json", "meta.json", "manifest.json", "report.md",
                    "clusters.jsonl")
RATIO_SAMPLE_BYTES = 2_000_000  # text per source encoded to measure its tokens per byte


Sampler = Callable[[str, int], str]  # (prompt, seed) -> continuation, for synthetic 'model' sources


class _Scan:
    """What pass 1 leaves behind: spool rows, the dedup index, counts and drop examples."""

    def __init__(self, recipe: Recipe):
        self.index = Deduplicator(recipe.dedup)
        self.rows: list[tuple[int, int, int, str, int]] = []  # (source, offset, bytes, id, dedup row or -1)
        self.read = {s.name: ReadStats() for s in recipe.sources}
        self.counts = {s.name: collections.Counter() for s in recipe.sources}
        self.drops: dict[str, dict] = {}
        self.timings = Timings()
        self.web = {s.name: WebStats() for s in recipe.sources if is_web_source(s)}
        self.lines = LineDeduplicator(recipe.dedup.lines) if recipe.dedup.lines != "off" else None


def is_web_source(src) -> bool:
    """A source of web pages: format = "web", or "auto" and its first file is WARC or HTML."""
    return src.type == "files" and (src.format == "web" or (src.format == "auto" and is_web_input(src.paths)))


def _documents(recipe: Recipe, scan: _Scan, samplers: dict[str, Sampler]) -> Iterator[tuple[Document, bool]]:
    for src in recipe.sources:
        stats = scan.read[src.name]
        if src.name in scan.web:  # pages: extracted while read, so "read" here is the extraction time
            docs = read_web_documents(src.paths, src.html_field, scan.web[src.name], src.name, src.limit)
        elif src.type == "files":
            if not src.paths:
                raise UserError(f"source '{src.name}' has no paths; set paths = [\"FILE\", ...] or pass --input")
            docs = read_documents(src.paths, src.text_field, src.id_field, stats, src.name, src.hf_split, src.limit,
                                  src.encoding)
        else:
            docs = synthetic_documents(src, samplers.get(src.name))
        t0 = time.process_time()
        for doc in docs:
            if src.type != "files" or src.name in scan.web:
                stats.documents += 1
                stats.bytes += len(doc.text.encode("utf-8"))
            doc.source = src.name
            scan.timings.add("read", time.process_time() - t0, 0)
            yield doc, src.process
            t0 = time.process_time()
        scan.timings.bytes["read"] += scan.web[src.name].bytes if src.name in scan.web else stats.bytes


def _note_drop(scan: _Scan, r) -> None:
    entry = scan.drops.setdefault(r.drop.rule, {"count": 0, "examples": []})
    entry["count"] += 1
    if len(entry["examples"]) < EXAMPLES_PER_RULE:
        entry["examples"].append({"id": r.id, "value": r.drop.value, "text": r.text[:200]})


def _dedup_lines(scan: _Scan, r, min_words: int) -> None:
    """Cut the lines an earlier document had (in input order); too little left is a drop."""
    t0 = time.process_time()
    before = r.text
    r.text = scan.lines.strip(r.text)
    scan.timings.add("dedup_lines", time.process_time() - t0, len(before.encode("utf-8")))
    n = len(r.text.split())
    if n < min_words:
        r.drop = Drop("dedup_lines_min_words", n)
        r.text = before[:300]


def scan_sources(recipe: Recipe, spool_path: Path, progress: bool, samplers: dict[str, Sampler]) -> _Scan:
    """Pass 1: read, clean, filter and fingerprint; spool the survivors."""
    scan = _Scan(recipe)
    source_ix = {s.name: i for i, s in enumerate(recipe.sources)}
    work = Work(recipe.clean, recipe.filter if recipe.filter.enabled else None,
                recipe.dedup if (recipe.dedup.exact or recipe.dedup.near) else None, recipe.web_rules())
    bar = tqdm(desc="scan (clean, filter, hash)", unit="B", unit_scale=True, disable=not progress)
    t_dedup = 0.0  # the index lives in this process: its time is measured here
    with open(spool_path, "wb") as spool, bar:
        for r in process_documents(_documents(recipe, scan, samplers), work, recipe.workers, scan.timings):
            bar.update(r.bytes_in)
            c = scan.counts[r.source]
            c["bytes_read"] += r.bytes_in
            c.update({f"pii_{kind}": n for kind, n in r.pii.items()})
            if not r.drop and r.process and scan.lines:
                _dedup_lines(scan, r, recipe.dedup.lines_min_words)
            if r.drop:
                c["dropped"] += 1
                _note_drop(scan, r)
                continue
            data = r.text.encode("utf-8")
            c["kept_after_filter"] += 1
            c["bytes_after_filter"] += len(data)
            dedup_row = -1
            if r.process and work.dedup:
                t0 = time.process_time()
                dedup_row = len(scan.index.ids)
                scan.index.add(r.id, len(r.text), r.key, r.sig)
                t_dedup += time.process_time() - t0
            scan.rows.append((source_ix[r.source], spool.tell(), len(data), r.id, dedup_row))
            spool.write(data)
    scan.timings.add("dedup_index", t_dedup, 0)
    return scan


def _measure_ratios(recipe: Recipe, scan: _Scan, keep: list[bool], spool_path: Path, tokenizer) -> dict[str, float]:
    """Tokens per byte of each source, on its first ~2 MB of kept text (mixing targets tokens)."""
    ratios = {}
    with open(spool_path, "rb") as spool:
        for i, src in enumerate(recipe.sources):
            n_bytes = n_tokens = 0
            for (s, off, size, _, _), k in zip(scan.rows, keep):
                if s != i or not k:
                    continue
                spool.seek(off)
                n_tokens += len(tokenizer.encode_ordinary(spool.read(size).decode("utf-8")))
                n_bytes += size
                if n_bytes >= RATIO_SAMPLE_BYTES:
                    break
            ratios[src.name] = n_tokens / n_bytes if n_bytes else 0.0
    return ratios


def split_single_document(scan: _Scan, keep: list[bool], spool_path: Path, piece_bytes: int = PIECE_BYTES) -> list[bool]:
    """A corpus of one long document (a book) is cut at line breaks into pieces of ~`piece_bytes`.

    Val is chosen by document, so one document would leave none; its pieces (ids `ID#k`) are
    split like documents instead. Any other corpus is left as it is. Returns the new `keep`.
    """
    kept = [i for i, k in enumerate(keep) if k]
    if len(kept) != 1 or scan.rows[kept[0]][2] < 2 * piece_bytes:
        return keep
    row = kept[0]
    source, offset, size, doc_id, _ = scan.rows[row]
    with open(spool_path, "rb") as spool:
        spool.seek(offset)
        data = spool.read(size)
    pieces, start = [], 0
    while start < size:
        cut = data.find(b"\n", start + piece_bytes)  # a newline byte never sits inside a UTF-8 character
        end = size if cut < 0 else cut + 1
        pieces.append((source, offset + start, end - start, f"{doc_id}#{len(pieces)}", -1))
        start = end
    scan.rows[row:row + 1] = pieces
    return keep[:row] + [True] * len(pieces) + keep[row + 1:]


def plan_mix(recipe: Recipe, scan: _Scan, keep: list[bool], ratios: dict[str, float]) -> tuple[list, dict]:
    """Pass 3: the ordered list of (row, split) to write, and the per-source rates."""
    names = [s.name for s in recipe.sources]
    size = collections.Counter()
    for (s, _, nbytes, _, _), k in zip(scan.rows, keep):
        if k:
            size[names[s]] += nbytes * ratios[names[s]]
    rates = plan_rates({n: size[n] for n in names}, {s.name: s.weight for s in recipe.sources},
                       {s.name: s.epochs for s in recipe.sources}, recipe.mix.total_tokens, recipe.mix.max_epochs)
    kept_rows = [row for row, k in enumerate(keep) if k]
    u = {row: unit_hash(recipe.seed, "val:" + scan.rows[row][3]) for row in kept_rows}
    val = {row for row in kept_rows if u[row] < recipe.val_fraction}
    if not val and recipe.val_fraction > 0 and len(kept_rows) > 1:
        val = {min(kept_rows, key=lambda r: u[r])}  # a small corpus still gets one val document
    order = []
    for row in kept_rows:
        s, doc_id = scan.rows[row][0], scan.rows[row][3]
        n = copies(rates[names[s]], doc_id, recipe.mix.seed)
        if row in val:
            # val follows the mix (a down-sampled source is down-sampled in val too) but never
            # repeats a document: repeats would only re-weight the loss, not test anything new
            order.extend([(row, "val")] * min(n, 1))
            continue
        order.extend([(row, "train")] * n)
    if recipe.mix.shuffle:
        random.Random(recipe.mix.seed).shuffle(order)
    return order, rates


def write_shards(order: list, scan: _Scan, spool_path: Path, tok_path: Path, tokenizer, out: Path,
                 recipe: Recipe, progress: bool) -> tuple[dict, dict]:
    """Pass 4: tokenize the planned documents into train/val shards; returns (splits, per-source tokens)."""
    writers = {s: ShardWriter(out, s, tokenizer.vocab_size, tokenizer.eot_id, recipe.shard_tokens) for s in ("train", "val")}
    nbytes = collections.Counter()
    per_source = collections.defaultdict(collections.Counter)
    names = [s.name for s in recipe.sources]

    def texts() -> Iterator[str]:
        with open(spool_path, "rb") as spool:
            for row, _ in order:
                _, off, size, _, _ = scan.rows[row]
                spool.seek(off)
                yield spool.read(size).decode("utf-8")

    bar = tqdm(total=sum(scan.rows[r][2] for r, _ in order), desc="tokenize", unit="B", unit_scale=True,
               disable=not progress)
    for (row, split), (text, ids) in zip(order, encode_documents(texts(), tok_path, recipe.workers)):
        size = scan.rows[row][2]
        writers[split].add_document(ids)
        nbytes[split] += size
        src = names[scan.rows[row][0]]
        per_source[src]["documents"] += 1
        per_source[src]["tokens"] += len(ids) + 1  # + the separator
        per_source[src]["bytes"] += size
        bar.update(size)
    bar.close()
    for w in writers.values():
        w.close()
    splits = {s: {"tokens": w.n_tokens, "bytes": nbytes[s], "documents": w.n_documents} for s, w in writers.items()}
    return splits, {k: dict(v) for k, v in per_source.items()}


def _empty_error(scan: _Scan) -> UserError:
    read = sum(s.documents for s in scan.read.values())
    top = sorted(scan.drops.items(), key=lambda kv: -kv[1]["count"])[:3]
    reasons = ", ".join(f"{rule} x{d['count']}" for rule, d in top) or "none"
    return UserError(f"no documents left after cleaning, filtering and dedup ({read} read; top drop reasons: "
                     f"{reasons}); loosen the [filter] settings of the recipe or check the inputs")


def prepare(recipe: Recipe, out: str | Path, progress: bool = True,
            samplers: dict[str, Sampler] | None = None, force: bool = False, verbose: bool = False) -> dict:
    """Run the whole pipeline into `out`; returns the manifest.

    Everything that can be checked up front is checked before any work (and before `verbose`
    prints the resolved recipe): the tokenizer, the inputs, and `out`, which may hold only an
    earlier output of this command unless `force` (the finished directory replaces it whole).
    `samplers` maps each synthetic "model" source's name to its `sample(prompt, seed) -> text`.
    """
    if not recipe.tokenizer:
        raise UserError("data prepare needs a tokenizer; pass --tokenizer tok.json (train one with "
                        "`scratchllm tokenizer train`) or set tokenizer = \"...\" in the recipe")
    if not recipe.sources:
        raise UserError("the recipe has no sources; add [[sources]] tables or pass --input PATH...")
    for src in recipe.sources:  # fail on a missing input now, not after an hour of scanning
        if is_web_source(src):
            web_files(src.paths)
        elif src.type == "files":
            expand_paths([p for p in src.paths if not p.startswith("hf:")])
    tokenizer = with_fast_backend(load_tokenizer(recipe.tokenizer))
    if tokenizer.eot_id is None:
        raise UserError("the tokenizer has no <|endoftext|> token to separate documents; train it with the default special tokens")
    check_output_dir(out, PREPARED_ENTRIES, force=force)
    if verbose:
        print("# resolved recipe\n" + dumps_toml(recipe), flush=True)
    t_start = time.perf_counter()
    with atomic_directory(Path(out)) as tmp:
        spool_path = tmp / ".spool.txt"
        scan = scan_sources(recipe, spool_path, progress, samplers or {})
        t0 = time.process_time()
        result = scan.index.finish()
        keep = [row == -1 or result.keep[row] for *_, row in scan.rows]
        scan.timings.add("dedup_index", time.process_time() - t0, sum(r[2] for r in scan.rows))
        if not any(keep):
            raise _empty_error(scan)
        tokenizer.save(str(tmp / "tokenizer.json"))
        t0 = time.process_time()
        keep = split_single_document(scan, keep, spool_path)
        ratios = _measure_ratios(recipe, scan, keep, spool_path, tokenizer)
        order, rates = plan_mix(recipe, scan, keep, ratios)
        if recipe.val_fraction > 0 and not any(split == "val" for _, split in order):
            raise UserError(f"{sum(keep)} document(s) left after cleaning, filtering and dedup, and none of them for "
                            f"validation (a single document is split only from {2 * PIECE_BYTES:,} bytes); pass more "
                            "text, or more documents (a .jsonl with one document a line, or several .txt files)")
        scan.timings.add("mix", time.process_time() - t0, sum(r[2] for r, k in zip(scan.rows, keep) if k))
        t0 = time.perf_counter()  # encoding runs in worker processes: wall time, all workers together
        splits, per_source = write_shards(order, scan, spool_path, tmp / "tokenizer.json", tokenizer, tmp, recipe, progress)
        scan.timings.add("tokenize_wall", time.perf_counter() - t0, sum(s["bytes"] for s in splits.values()))
        spool_path.unlink()
        if splits["train"]["documents"] == 0:
            raise UserError("every kept document went to validation; lower val_fraction or add more documents")
        sha = hashlib.sha256((tmp / "tokenizer.json").read_bytes()).hexdigest()
        meta = {"vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id, "tokenizer_sha256": sha,
                "val_fraction": recipe.val_fraction, "seed": recipe.seed, "splits": splits}
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2))
        atomic_write_text(tmp / "clusters.jsonl", "".join(json.dumps(c.ids) + "\n" for c in result.clusters))
        manifest = report_mod.build_manifest(recipe, scan, result, keep, rates, ratios, splits, per_source, meta,
                                             time.perf_counter() - t_start)
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        atomic_write_text(tmp / "report.md", report_mod.render(manifest, result.clusters))
    return manifest
