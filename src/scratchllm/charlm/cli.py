"""`scratchllm charlm`: train and sample the first models (bigram, neural bigram, MLP, char transformer).

    scratchllm charlm train --model bigram                       # built-in word list, no data needed
    scratchllm charlm train --model mlp --data names.txt --out runs/names-mlp mlp.steps=20000
    scratchllm charlm train --model transformer --data tinyshakespeare.txt --out runs/shakespeare
    scratchllm charlm sample --run runs/names-mlp -n 20
"""

from __future__ import annotations

import argparse
import json

KINDS = ["bigram", "bigram-nn", "mlp", "transformer"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("charlm", help="first models: bigram, MLP and a char-level transformer",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="charlm_command", metavar="COMMAND", required=True)

    t = sub.add_parser("train", help="train a character-level model into a run directory")
    t.add_argument("--model", choices=KINDS, default="mlp", help="which model (default: mlp)")
    t.add_argument("--data", default="", help="a one-item-per-line or plain-text UTF-8 file "
                   "(default: the words of the Unicode character names, built in)")
    t.add_argument("--mode", choices=["auto", "lines", "stream"], default="auto",
                   help="lines: each line is an item between boundary tokens; stream: one long text; "
                        "auto: lines for a list of short non-blank lines (default)")
    t.add_argument("--out", default=None, help="run directory (default: runs/charlm-MODEL)")
    t.add_argument("--seed", type=int, default=42, help="split shuffle and training seed")
    t.add_argument("--force", action="store_true", help="write into --out even if it holds files that are not a run's")
    t.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    t.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. steps=5000 (the model's table), model.n_layer=6 train.max_steps=500")
    t.set_defaults(func=_train)

    s = sub.add_parser("sample", help="print samples from a charlm run")
    s.add_argument("--run", required=True, help="run directory written by `charlm train`")
    s.add_argument("-n", type=int, default=20, help="how many samples (default 20)")
    s.add_argument("--seed", type=int, default=0, help="sampling seed: the same seed gives the same samples")
    s.add_argument("--length", type=int, default=200, help="characters per sample of a stream-mode run")
    s.set_defaults(func=_sample)


def _train(args) -> int:
    from scratchllm.charlm.runs import CharLMConfig
    from scratchllm.train.checkpoint import RUN_ENTRIES, list_steps
    from scratchllm.utils.outdir import check_output_dir, removed_on_failure

    charlm = CharLMConfig(kind=args.model, data=args.data, mode=args.mode, seed=args.seed)
    out = check_output_dir(args.out or f"runs/charlm-{args.model}", RUN_ENTRIES, force=args.force)
    with removed_on_failure(out, keep=lambda d: bool(list_steps(d))):
        if args.model == "transformer":
            from scratchllm.charlm.transformer import train_transformer

            final = train_transformer(charlm, args.overrides, out, verbose=args.verbose)
        else:
            from scratchllm.charlm.runs import train_run

            final = train_run(charlm, args.overrides, out, verbose=args.verbose)
    print(json.dumps({k: round(v, 4) for k, v in final.items()}))
    print(f"run saved to {out}; sample it with: scratchllm charlm sample --run {out} -n 20")
    return 0


def _sample(args) -> int:
    from scratchllm.charlm.runs import read_run_config, sample_run
    from scratchllm.errors import UserError

    if args.n < 1 or args.length < 1:
        raise UserError("-n and --length must be at least 1")
    if read_run_config(args.run)["charlm"].get("kind") == "transformer":
        from scratchllm.charlm.transformer import sample_transformer

        samples = sample_transformer(args.run, args.n, args.seed, args.length)
    else:
        samples = sample_run(args.run, args.n, args.seed, args.length)
    sep = "\n" if all("\n" not in s for s in samples) else "\n---\n"
    print(sep.join(samples))
    return 0
