"""Benchmark: train a byte-level BPE (ours) vs HF `tokenizers` BpeTrainer, same text, pattern and vocab.

Each trainer runs in its own fresh process on the same in-memory documents (reading and
decompressing the files is not timed); we report wall time and peak RSS (for ours, the main
process plus the largest counting worker; HF uses threads inside one process).

    python bench/tokenizer_train.py --mb 100 --vocab-size 32768 --out runs/bench/tok32k.json
    python bench/tokenizer_train.py --mb 20 --workers 2        # a quicker look
"""

from __future__ import annotations

import argparse
import glob
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

DEFAULT_DATA = "../shared/data/pretrain/gutenberg/gutenberg-0[0-1]*.jsonl.xz"


def load_texts(pattern: str, mb: float) -> list[str]:
    from scratchllm.data.sources import read_texts

    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit(f"no files match {pattern}; pass --data")
    return list(read_texts(files, max_bytes=int(mb * 1e6)))


def peak_rss_mb() -> tuple[float, float]:
    """(this process, its largest child) peak resident memory, MB (Linux reports KB)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def run_ours(args, texts: list[str]) -> dict:
    from scratchllm.tokenizer import Tokenizer

    t = time.perf_counter()
    tok = Tokenizer.train(texts, args.vocab_size, args.pattern, num_workers=args.workers, progress=False)
    wall = time.perf_counter() - t
    if args.out:
        tok.save(args.out)
    main, child = peak_rss_mb()
    return {"wall_s": wall, "peak_rss_mb": main + child, "vocab_size": tok.vocab_size}


def run_hf(args, texts: list[str]) -> dict:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    from scratchllm.tokenizer.patterns import resolve_pattern
    from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(resolve_pattern(args.pattern)), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=DEFAULT_SPECIAL_TOKENS)
    t = time.perf_counter()
    tok.train_from_iterator(texts, trainer)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "peak_rss_mb": sum(peak_rss_mb()), "vocab_size": tok.get_vocab_size()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="glob of .txt/.jsonl(.xz) files")
    ap.add_argument("--mb", type=float, default=100.0, help="MB of text to train on")
    ap.add_argument("--vocab-size", type=int, default=32768)
    ap.add_argument("--pattern", default="gpt4")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=None, help="save our tokenizer here (for bench/tokenizer_encode.py)")
    ap.add_argument("--only", choices=["ours", "hf"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:  # child mode: one trainer in a fresh process, result as JSON on stdout
        texts = load_texts(args.data, args.mb)
        print(json.dumps((run_ours if args.only == "ours" else run_hf)(args, texts)))
        return
    results = {}
    for which in ("ours", "hf"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--only", which]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
        print(which, results[which], flush=True)
    ratio = results["ours"]["wall_s"] / results["hf"]["wall_s"]
    print(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "mb": args.mb,
                      "vocab_size": args.vocab_size, "pattern": args.pattern, "python": platform.python_version(),
                      "ours": results["ours"], "hf": results["hf"], "time_ratio_ours_over_hf": round(ratio, 2)}))
    print(f"| train {args.mb:g} MB, vocab {args.vocab_size} | ours {results['ours']['wall_s']:.1f} s, "
          f"{results['ours']['peak_rss_mb']:.0f} MB | HF {results['hf']['wall_s']:.1f} s, "
          f"{results['hf']['peak_rss_mb']:.0f} MB | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
