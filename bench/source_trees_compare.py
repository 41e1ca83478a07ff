"""Two source trees of scratchllm, timed on the same machine in alternation: `scratchllm --help`
start-up and the process-pool stages (pre-token counting for tokenizer training, tokenizing into
a token directory) on the built-in corpus.

Used to check that a refactor (issue 9: imports moved to the top, one bounded process pool)
costs nothing. Each measurement is a fresh `python` process with PYTHONPATH set to one tree;
runs alternate between the trees so that a busy machine slows both alike; medians are printed.

    git archive <before-commit> src | tar -x -C /tmp/before
    python bench/source_trees_compare.py /tmp/before/src src --repeats 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# One child per measurement: prints its seconds as JSON. The corpus is capped so a run takes seconds.
POOL_STAGES = r"""
import json, sys, tempfile, time
from scratchllm.data.builtin import builtin_documents
from scratchllm.data.tokenize import write_token_dir
from scratchllm.tokenizer import Tokenizer
from scratchllm.tokenizer.train import count_pretokens
from scratchllm.tokenizer.patterns import resolve_pattern
docs = list(builtin_documents(max_bytes=int(sys.argv[1])))
t0 = time.perf_counter()
count_pretokens(docs, resolve_pattern("gpt4"), num_workers=2, progress=False)
t1 = time.perf_counter()
tok = Tokenizer.train(docs[:50], vocab_size=512, num_workers=1, progress=False)
t2 = time.perf_counter()
write_token_dir(iter(docs), tok, tempfile.mkdtemp() + "/tok", workers=2, progress=False)
t3 = time.perf_counter()
print(json.dumps({"count_pretokens_s": t1 - t0, "write_token_dir_s": t3 - t2}))
"""


def _run(src: str, args: list[str]) -> float | dict:
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - t0
    return json.loads(out.strip().splitlines()[-1]) if args[0] == "-c" else elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--corpus-bytes", type=int, default=4_000_000)
    ap.add_argument("--help-only", action="store_true", help="time only `scratchllm --help` (more repeats, less time)")
    a = ap.parse_args()
    results = {name: {"help_s": [], "count_pretokens_s": [], "write_token_dir_s": []} for name in ("before", "after")}
    for _ in range(a.repeats):
        for name, src in (("before", a.before), ("after", a.after)):
            results[name]["help_s"].append(_run(src, ["-m", "scratchllm", "--help"]))
            if not a.help_only:
                for k, v in _run(src, ["-c", POOL_STAGES, str(a.corpus_bytes)]).items():
                    results[name][k].append(v)
    for name, r in results.items():
        print(json.dumps({"tree": name, "repeats": a.repeats, "corpus_bytes": a.corpus_bytes,
                          **{k: round(statistics.median(v), 3) for k, v in r.items() if v}}))


if __name__ == "__main__":
    main()
