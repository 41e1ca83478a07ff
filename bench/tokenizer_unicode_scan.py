"""Parity scan: our encoder vs tiktoken on every Unicode code point (surrogates excepted).

Each code point X is encoded in four contexts, "Xa X1 xXX \\nX's ", in blocks of 2,000 code
points; a block that differs is searched code point by code point. Minutes per encoding on one core.

    python bench/tokenizer_unicode_scan.py --encoding cl100k_base
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import tiktoken

from scratchllm.tokenizer import formats

TOKDIR = Path("../shared/data/tokenizer")


def load(name: str, tokdir: Path):
    if name == "gpt2":
        ours = formats.import_gpt2(tokdir / "gpt2" / "encoder.json", tokdir / "gpt2" / "vocab.bpe")
    else:
        ours = formats.import_tiktoken(tokdir / f"{name}.tiktoken", name)
    # the reference: tiktoken's own engine on the same ranks, published pattern and special tokens
    ref = tiktoken.Encoding(name, pat_str=ours.pattern, mergeable_ranks=ours.ranks,
                            special_tokens=ours.special_tokens)
    return ours, ref


def context(ch: str) -> str:
    return f"{ch}a {ch}1 x{ch}{ch} \n{ch}'s "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoding", choices=["gpt2", "cl100k_base", "o200k_base"], default="cl100k_base")
    ap.add_argument("--tokdir", type=Path, default=TOKDIR)
    args = ap.parse_args()
    ours, ref = load(args.encoding, args.tokdir)
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    bad: list[int] = []
    t = time.perf_counter()
    for i in range(0, len(cps), 2000):
        block = [chr(cp) for cp in cps[i:i + 2000]]
        text = "".join(context(ch) for ch in block)
        if ours.encode_ordinary(text) != ref.encode_ordinary(text):
            bad += [ord(ch) for ch in block if ours.encode_ordinary(context(ch)) != ref.encode_ordinary(context(ch))]
    print(f"{args.encoding}: {len(cps)} code points, {len(bad)} mismatches {[hex(b) for b in bad[:20]]} "
          f"({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
