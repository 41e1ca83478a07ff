"""Benchmark: encoding throughput (MB/s) and bytes per token on held-out Gutenberg text.

Encoders, all on GPT-2's vocabulary (built from the shared files) and checked to give identical
ids: ours (pure Python), ours with the tiktoken backend, tiktoken itself, HF `tokenizers` (our
GPT-2 exported as tokenizer.json). Each at 1 process/thread and at all cores. Then bytes per
token of our trained 32k tokenizer (from bench/tokenizer_train.py --out) against GPT-2's.

    python bench/tokenizer_encode.py --mb 5 --ours32k runs/bench/tok32k.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_HELD_OUT = "../shared/data/pretrain/gutenberg/gutenberg-017.jsonl.xz"
DEFAULT_GPT2 = "../shared/data/tokenizer/gpt2"


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--held-out", default=DEFAULT_HELD_OUT, help="text not used to train the 32k tokenizer")
    ap.add_argument("--gpt2", default=DEFAULT_GPT2, help="directory with encoder.json and vocab.bpe")
    ap.add_argument("--mb", type=float, default=5.0, help="MB of held-out text to encode")
    ap.add_argument("--ours32k", default=None, help="our trained tokenizer JSON for the bytes/token comparison")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()

    import tiktoken
    import tokenizers

    from scratchllm.tokenizer import formats, load_tokenizer
    from scratchllm.data.sources import read_texts

    docs = list(read_texts([args.held_out], max_bytes=int(args.mb * 1e6)))
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    ours = formats.import_gpt2(Path(args.gpt2) / "encoder.json", Path(args.gpt2) / "vocab.bpe")
    fast = formats.import_gpt2(Path(args.gpt2) / "encoder.json", Path(args.gpt2) / "vocab.bpe")
    fast.backend = "tiktoken"
    tik = tiktoken.Encoding("gpt2", pat_str=ours.pattern, mergeable_ranks=ours.ranks,
                            special_tokens=ours.special_tokens)
    with tempfile.TemporaryDirectory() as d:
        formats.export_hf(ours, Path(d) / "tokenizer.json")
        hf = tokenizers.Tokenizer.from_file(str(Path(d) / "tokenizer.json"))

    w = args.workers
    runs = {
        "ours (python), 1 process": lambda: [ours.encode_ordinary(t) for t in docs],
        f"ours (python), {w} processes": lambda: ours.encode_batch(docs, num_workers=w, disallowed_special=()),
        "ours + tiktoken backend, 1 thread": lambda: [fast.encode_ordinary(t) for t in docs],
        f"ours + tiktoken backend, {w} threads": lambda: fast.encode_batch(docs, num_workers=w),
        "tiktoken, 1 thread": lambda: [tik.encode_ordinary(t) for t in docs],
        f"tiktoken, {w} threads": lambda: tik.encode_ordinary_batch(docs, num_threads=w),
        "HF tokenizers, 1 thread": lambda: [hf.encode(t).ids for t in docs],
        f"HF tokenizers, {w} threads": lambda: [e.ids for e in hf.encode_batch(docs)],
    }
    reference = None
    results = {}
    for name, fn in runs.items():
        secs, ids = timed(fn)
        if reference is None:
            reference = ids
        results[name] = {"MB_per_s": round(n_bytes / 1e6 / secs, 3), "identical_ids": ids == reference}
        print(f"| {name} | {results[name]['MB_per_s']:.2f} | {ids == reference} |", flush=True)

    n_gpt2 = sum(map(len, reference))
    bpt = {"gpt2": round(n_bytes / n_gpt2, 3)}
    if args.ours32k:
        tok = load_tokenizer(args.ours32k)
        tok.backend = "tiktoken"  # identical ids, faster
        bpt[f"ours {tok.vocab_size}"] = round(n_bytes / sum(len(tok.encode_ordinary(t)) for t in docs), 3)
    print(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "held_out_bytes": n_bytes,
                      "documents": len(docs), "encode": results, "bytes_per_token": bpt}, indent=1))


if __name__ == "__main__":
    main()
