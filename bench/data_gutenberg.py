"""Benchmark: the raw Gutenberg books through `scratchllm data prepare`, on 2 worker processes.

Reports MB/s per stage (CPU seconds, so a busy shared machine does not distort them), the
wall time, peak RSS of the main process and of the largest worker, documents and tokens in
and out, the duplicate editions found (with file names), and the language-id check against
the books' own "Language:" header lines. Peers measured in the same run: reading the
compressed JSONL alone (the floor every pipeline pays), and classic 128-hash MinHash vs our
one-permutation MinHash on a sample of books (speed and agreement of Jaccard estimates).

    python bench/data_gutenberg.py --data ../shared/data/pretrain/gutenberg --out /tmp/gut
    python bench/data_gutenberg.py --files 3 ...     # a subset: the first 3 .jsonl.xz files
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

from scratchllm.data import langid
from scratchllm.data.clean import CleanConfig, clean_text
from scratchllm.data.minhash import MinHasher, estimate_jaccard
from scratchllm.data.prepare import prepare
from scratchllm.data.recipe import load_recipe
from scratchllm.data.sources import read_documents

_LANG = re.compile(r"^Language:\s*([A-Za-z]+)", re.MULTILINE)


def read_pass(files: list[str]) -> dict:
    """Peer: decompress + parse every line; also collect id -> file and header languages."""
    t0, c0 = time.perf_counter(), time.process_time()
    names, langs, nbytes, ndocs = {}, {}, 0, 0
    for path in files:
        with __import__("lzma").open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                names[row["id"]] = row.get("file", "")
                m = _LANG.search(row["text"][:20_000])
                langs[row["id"]] = m.group(1) if m else None
                nbytes += len(row["text"].encode("utf-8"))
                ndocs += 1
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "bytes": nbytes, "docs": ndocs,
            "names": names, "langs": langs}


def langid_check(files: list[str], langs: dict) -> dict:
    """Predicted language of every cleaned book vs its "Language:" header (where it has one)."""
    rows = []
    for doc in read_documents(files):
        pred, score = langid.identify(clean_text(doc.text, CleanConfig()))
        rows.append((doc.id, langs.get(doc.id), pred, round(score, 3)))
    code = {"English": "en", "French": "fr", "German": "de", "Spanish": "es", "Italian": "it", "Latin": "la",
            "Dutch": "nl", "Portuguese": "pt", "Finnish": "fi", "Swedish": "sv", "Danish": "da"}
    labelled = [r for r in rows if r[1]]
    correct = sum(code.get(r[1]) == r[2] for r in labelled)
    non_en = [r for r in rows if (r[1] and r[1] != "English") or r[2] != "en"]
    return {"labelled": len(labelled), "correct": correct, "non_english_or_predicted": non_en}


def minhash_peer(files: list[str], n_books: int = 20) -> dict:
    """Classic MinHash (128 multiply-add hashes per shingle) vs one-permutation, same shingles."""
    texts = [d.text for d, _ in zip(read_documents(files[:1]), range(n_books))]
    oph = MinHasher(128, 5, seed=0)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 128, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, 128, dtype=np.uint64)

    def classic(text):
        sh = np.unique(oph.shingles(text))
        mins = np.full(128, np.iinfo(np.uint64).max, np.uint64)
        with np.errstate(over="ignore"):
            for i in range(0, len(sh), 4096):
                np.minimum(mins, (sh[i:i + 4096, None] * a + b).min(axis=0), out=mins)
        return mins

    mb = sum(len(t.encode()) for t in texts) / 1e6
    c0 = time.process_time(); sig_o = [oph.signature(t) for t in texts]; t_o = time.process_time() - c0
    c0 = time.process_time(); sig_c = [classic(t) for t in texts]; t_c = time.process_time() - c0
    # agreement: Jaccard estimates of the pairs (book i, book i edited) under both methods
    edits = []
    r = np.random.default_rng(1)
    for t in texts[:5]:
        words = t.split()
        for j in r.integers(0, len(words), len(words) // 20):
            words[j] = "zzz"
        e = " ".join(words)
        edits.append((estimate_jaccard(oph.signature(t), oph.signature(e)),
                      estimate_jaccard(classic(t), classic(e))))
    return {"mb": mb, "oph_mb_s": mb / t_o, "classic_mb_s": mb / t_c, "speedup": t_c / t_o, "edited_pairs": edits}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/pretrain/gutenberg")
    ap.add_argument("--tokenizer", required=True, help="tokenizer JSON (e.g. GPT-2 imported with scratchllm tokenizer import)")
    ap.add_argument("--out", default="/tmp/gut")
    ap.add_argument("--files", type=int, default=0, help="use only the first N .jsonl.xz files (0: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    files = sorted(glob.glob(f"{args.data}/*.jsonl.xz"))[: args.files or None]
    if not files:
        sys.exit(f"no .jsonl.xz files under {args.data}")
    peer = read_pass(files)
    recipe = load_recipe("gutenberg")
    recipe.sources[0].paths = files
    recipe.tokenizer = args.tokenizer
    recipe.workers = args.workers
    t0 = time.perf_counter()
    m = prepare(recipe, args.out)
    wall = time.perf_counter() - t0
    rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    clusters = [json.loads(line) for line in open(Path(args.out) / "clusters.jsonl")]
    figures = {"files": len(files), "wall_s": wall, "rss_main_mb": rss_main, "rss_largest_worker_mb": rss_child,
               "read_peer": {k: peer[k] for k in ("wall", "cpu", "bytes", "docs")}, "manifest_stages": m["stages"],
               "sources": m["sources"], "splits": m["splits"], "dedup": m["dedup"], "drops": {k: v["count"] for k, v in m["drops"].items()},
               "clusters": [[peer["names"].get(i, i) for i in c] for c in clusters]}
    print(json.dumps({k: v for k, v in figures.items() if k != "clusters"}, indent=1, default=str), flush=True)
    print("duplicate clusters (kept first):")
    for c in figures["clusters"]:
        print("  ", " | ".join(c), flush=True)
    figures["minhash_peer"] = mh = minhash_peer(files)
    print(json.dumps({"minhash_peer": mh}, indent=1), flush=True)
    figures["langid"] = lid = langid_check(files, peer["langs"])
    print(json.dumps({"langid": lid}, indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
