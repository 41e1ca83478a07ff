"""Benchmark: the first models on names.txt (80/10/10 split), with the figures for docs/first-models.md.

    OMP_NUM_THREADS=1 python bench/charlm_names.py --data ../shared/data/char/names.txt --figures docs/first-models

Runs, in one process: the counting bigram (add-1; `nll_full` = makemore's 2.4543 figure),
the neural bigram, our default MLP (target: val NLL <= 2.15 within 3 minutes on 2 CPU cores)
and, as the peer, the same trainer with makemore's MLP shape (context 3, 10-dim embeddings,
200 hidden, batch 32) for the same number of steps. Prints one JSON line per model with wall
seconds and the process's CPU seconds (single-threaded CPU seconds = what the run would take
alone on one core, a conservative stand-in for 2 dedicated cores on a shared machine).
With --figures it writes bigram.png, embeddings.png, lr_sweep.png and samples.txt there.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from scratchllm.charlm import plots
from scratchllm.charlm.data import examples, load_corpus
from scratchllm.charlm.mlp import MLP, MLPConfig, lr_find
from scratchllm.charlm.runs import CharLMConfig, sample_run, train_run


def timed(label: str, fn) -> dict:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = fn()
    row = {"model": label, "wall_s": round(time.perf_counter() - wall0, 1),
           "cpu_s": round(time.process_time() - cpu0, 1), "loadavg_1m": os.getloadavg()[0],
           **{k: round(v, 4) for k, v in result.items()}}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--figures", default=None, help="directory for the docs' PNGs and samples")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="charlm-names-"))
    cfg = lambda kind: CharLMConfig(kind=kind, data=args.data)  # noqa: E731
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    timed("bigram (add-1)", lambda: train_run(cfg("bigram"), [], root / "bigram", progress=False))
    timed("bigram-nn", lambda: train_run(cfg("bigram-nn"), [], root / "bigram-nn", progress=False))
    timed("mlp (ours)", lambda: train_run(cfg("mlp"), [], root / "mlp", progress=False))
    peer = ["context=3", "n_embd=10", "n_hidden=200", "batch_size=32"]
    timed("mlp (makemore shape, same steps)", lambda: train_run(cfg("mlp"), peer, root / "peer", progress=False))
    if args.figures:
        fig = Path(args.figures)
        fig.mkdir(parents=True, exist_ok=True)
        for run, name in (("bigram", "bigram.png"), ("mlp", "embeddings.png")):
            (fig / name).write_bytes((root / run / name).read_bytes())
        corpus = load_corpus(args.data)
        torch.manual_seed(0)
        model = MLP(MLPConfig(), corpus.tokenizer.vocab_size)
        lrs, losses = lr_find(model, *examples(corpus, corpus.splits["train"], model.cfg.context), lo=1e-4, hi=1.0)
        plots.lr_sweep(lrs, losses, fig / "lr_sweep.png")
        with open(fig / "samples.txt", "w") as f:
            for run in ("bigram", "bigram-nn", "mlp"):
                f.write(f"## {run}\n" + " ".join(sample_run(root / run, n=20, seed=0)) + "\n")
    print(f"# runs in {root}")


if __name__ == "__main__":
    main()
